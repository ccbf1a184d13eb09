"""One settings module, read from the environment (healthchecks style).

The helpers below refuse values they do not understand instead of guessing:
`DEBUG=flase` is an error at start-up, not a production site running in debug mode.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("O2O_VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# The absolute base URL printed into QR codes; behind a proxy this is the public address.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "o2o.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "o2o.apps.O2OConfig",
    "merchants",
    "orders",
    "members",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a flagged lockout into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "o2o.urls"
WSGI_APPLICATION = "o2o.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Pickup pages' filters live with the pickups package (orders/pickups is not an app of its own).
            "libraries": {"pickups": "orders.pickups.templatetags"},
        },
    },
]

# Embedded default: SQLite under var/. PostgreSQL when DATABASE_URL says so.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'o2o.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: wait for the lock instead of failing,
    # and use WAL so readers never wait for a writer and a commit costs no full fsync.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
# With Redis, landing-page scans are buffered there and written in batches (orders/scan_buffer.py).
SCAN_BUFFER = env_bool("SCAN_BUFFER", True)
# How long a web process reuses a promotion's row for its landing page: stock left, price and status
# shown may be this many seconds late (ordering always reads fresh); 0 reads it on every visit.
LANDING_ROW_CACHE_SECONDS = env_int("LANDING_ROW_CACHE_SECONDS", 1)
# The built-in sandbox provider takes pretend payments: on for development and demos only.
PAYMENTS_SANDBOX = env_bool("PAYMENTS_SANDBOX", DEBUG)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Per process, for rendered pages reused a few seconds (the landing page): no network round trip.
    "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pages"},
}

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username/IP pair never reaches the password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes: lock a username+IP pair out after a few failures, for a while.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# static/ is optional (git keeps no empty folders); a missing one would be a check warning.
STATICFILES_DIRS = [path for path in [BASE_DIR / "static"] if path.is_dir()]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Deployment hardening; `manage.py check --deploy` is clean with DEBUG off.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "o2o.auth.StaffTokenAuthentication",  # DRF's token, with the staff role in the same query
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["o2o.tenancy.IsMerchantStaff"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "o2o.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "O2O merchant portal API",
    "DESCRIPTION": "Stores, products, pickups and payment notifications of one merchant.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport under var/
# (one host only, no service to install; see README).
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    # The host part means nothing to this transport; naming one silences kombu's "No hostname" warning.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "messages"),
        "data_folder_out": str(CELERY_BROKER_DIR / "messages"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A hard limit only: a global soft limit above a task's own `time_limit` makes Celery refuse to send
# that task (ValueError in apply_async). Tasks that want a soft limit set both on the task.
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sessions-clear-expired": {"task": "o2o.tasks.sessions_clear_expired", "schedule": timedelta(hours=6)},
    "axes-prune-attempts": {"task": "o2o.tasks.access_attempts_prune", "schedule": timedelta(hours=6)},
    # Set-based and idempotent: a missed or doubled run heals on the next one.
    "orders-cancel-unpaid": {"task": "orders.tasks.orders_cancel_unpaid", "schedule": timedelta(minutes=1)},
    "promotions-advance": {"task": "orders.tasks.promotions_advance", "schedule": timedelta(minutes=1)},
    "payments-query-sweep": {"task": "orders.payments.tasks.payment_query_sweep", "schedule": timedelta(minutes=2)},
    "payments-notifications-reapply": {
        "task": "orders.payments.tasks.payment_notifications_reapply",
        "schedule": timedelta(minutes=1),
    },
    "pickup-idempotency-keys-prune": {
        "task": "orders.tasks.pickup_idempotency_keys_prune",
        "schedule": timedelta(hours=6),
    },
    # Expires paid pickups past their deadline and refunds them; a rerun refunds nothing twice.
    "pickups-expire-overdue": {"task": "orders.tasks.pickups_expire_overdue", "schedule": timedelta(minutes=10)},
    "refunds-resume": {"task": "orders.payments.tasks.refunds_resume", "schedule": timedelta(minutes=5)},
    # Yesterday's settlement statements once providers publish them (WeChat Pay after 10:00, Alipay after
    # 09:00 Beijing time); also re-queues uploads stuck running. Idempotent.
    "reconciliation-daily": {
        "task": "orders.reconciliation.tasks.reconciliation_daily_all",
        "schedule": crontab(hour=10, minute=30),
    },
}
if REDIS_URL and SCAN_BUFFER:
    CELERY_BEAT_SCHEDULE["scans-flush"] = {"task": "orders.tasks.scans_flush", "schedule": timedelta(seconds=5)}

# Customer notifications (members/notifications): SMS to the member's phone, e-mail when they gave one.
# NOTIFICATIONS_SMS: console (printed by the worker; the default without a gateway), http (SMS_GATEWAY_URL,
# the default with one) or off. NOTIFICATIONS_EMAIL: on (through EMAIL_BACKEND) or off.
_SMS_BACKENDS = {
    "console": "members.notifications.backends.ConsoleSMSBackend",
    "http": "members.notifications.backends.HttpSMSBackend",
    "off": "",
}
SMS_GATEWAY_URL = env_str("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = env_str("SMS_GATEWAY_TOKEN", "")
SMS_SENDER = env_str("SMS_SENDER", "")
SMS_GATEWAY_TIMEOUT = env_int("SMS_GATEWAY_TIMEOUT", 10, minimum=1)
NOTIFICATIONS_SMS = env_str("NOTIFICATIONS_SMS", "http" if SMS_GATEWAY_URL else "console")
if NOTIFICATIONS_SMS not in _SMS_BACKENDS:
    raise ImproperlyConfigured(f"NOTIFICATIONS_SMS={NOTIFICATIONS_SMS!r}: use one of {', '.join(_SMS_BACKENDS)}")
if NOTIFICATIONS_SMS == "http" and not SMS_GATEWAY_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("NOTIFICATIONS_SMS=http needs SMS_GATEWAY_URL=https://...")
NOTIFICATIONS_SMS_BACKEND = _SMS_BACKENDS[NOTIFICATIONS_SMS]
NOTIFICATIONS_EMAIL_BACKEND = (
    "members.notifications.backends.EmailBackend" if env_bool("NOTIFICATIONS_EMAIL", True) else ""
)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "no-reply@localhost")
# A failed message is retried with a growing wait (1, 2, 4 ... minutes, at most an hour), then given up.
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 6, minimum=1)
# Queued messages whose task was lost, failures due again, claims of a crashed worker: sent by this sweep.
CELERY_BEAT_SCHEDULE["notifications-resume"] = {
    "task": "members.tasks.notifications_resume",
    "schedule": timedelta(minutes=1),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
