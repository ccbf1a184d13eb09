"""Settings read from the environment, deployment checks and migrations: the platform under every app.

Start-up behaviour is checked in subprocesses (a fresh interpreter reads the environment like a real
deployment does); settings values are checked by executing o2o/settings.py with a chosen environment.
"""

import os
import runpy
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SETTINGS_FILE = settings.BASE_DIR / "o2o" / "settings.py"
# Everything o2o/settings.py reads, so the developer's own environment cannot leak into these checks.
SETTINGS_ENV = {
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SITE_URL", "DATABASE_URL", "DB_CONN_MAX_AGE",
    "REDIS_URL", "O2O_VAR_DIR", "MEDIA_ROOT", "AXES_FAILURE_LIMIT", "AXES_COOLOFF_MINUTES", "LANGUAGE_CODE",
    "TIME_ZONE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "BEHIND_PROXY",
    "CELERY_TASK_ALWAYS_EAGER", "LOG_LEVEL",
}  # fmt: skip
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(48), "ALLOWED_HOSTS": "portal.example.com"}


# conftest.py sets this for Playwright; a deployment must not (check --deploy flags it as async.W001).
TEST_ONLY_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args: str, env: dict[str, str], var_dir) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name not in SETTINGS_ENV | TEST_ONLY_ENV}
    clean.update({"DJANGO_SETTINGS_MODULE": "o2o.settings", "O2O_VAR_DIR": str(var_dir), **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_with(monkeypatch, tmp_path, **env: str) -> dict:
    """The module-level names o2o/settings.py defines under exactly this environment."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("O2O_VAR_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_check_deploy_reports_no_issues_with_production_settings(tmp_path):
    assert len(PRODUCTION["SECRET_KEY"]) >= 50

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, var_dir=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_off_without_secret_key_refuses_to_start(tmp_path):
    env = {**PRODUCTION}
    del env["SECRET_KEY"]

    result = manage("check", env=env, var_dir=tmp_path)

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_that_is_not_a_boolean_is_refused_naming_debug(tmp_path):
    result = manage("check", env={"DEBUG": "maybe"}, var_dir=tmp_path)

    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_models_and_migrations_agree(tmp_path):
    result = manage("makemigrations", "--check", "--dry-run", env={}, var_dir=tmp_path)

    assert result.returncode == 0, "models changed without a migration:\n" + result.stdout + result.stderr


def test_database_url_for_postgres_selects_the_postgresql_engine(monkeypatch, tmp_path):
    values = settings_with(monkeypatch, tmp_path, DATABASE_URL="postgres://portal:secret@db.internal:5433/o2o")

    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5433, "o2o")


def test_embedded_defaults_are_sqlite_and_the_filesystem_broker_under_the_var_folder(monkeypatch, tmp_path):
    values = settings_with(monkeypatch, tmp_path)

    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["DATABASES"]["default"]["NAME"] == str(tmp_path / "o2o.sqlite3")
    assert values["CELERY_BROKER_URL"].startswith("filesystem://")
    options = values["CELERY_BROKER_TRANSPORT_OPTIONS"]
    # One folder for both directions: producers and consumers must meet in the same place.
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker" / "messages")
    assert values["CELERY_BEAT_SCHEDULE_FILENAME"] == str(tmp_path / "celerybeat-schedule")


def test_redis_url_becomes_the_broker_and_the_cache(monkeypatch, tmp_path):
    values = settings_with(monkeypatch, tmp_path, REDIS_URL="redis://127.0.0.1:6379/3")

    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "flase", "DEBUG='flase' is not a boolean"),
        ("DB_CONN_MAX_AGE", "soon", "DB_CONN_MAX_AGE='soon' is not a whole number"),
        ("AXES_FAILURE_LIMIT", "0", "AXES_FAILURE_LIMIT=0 must be at least 1"),
    ],
)
def test_values_the_settings_do_not_understand_are_refused(monkeypatch, tmp_path, name, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        settings_with(monkeypatch, tmp_path, **{name: value})


def test_every_task_can_be_sent_with_the_configured_time_limits():
    """Celery refuses to send a task whose soft limit exceeds its hard limit (ValueError in apply_async)."""
    from o2o.celery import app

    app.loader.import_default_modules()
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        soft, hard = task.soft_time_limit, task.time_limit
        assert not (soft and hard and soft > hard), f"{name}: soft_time_limit {soft} > time_limit {hard}"
