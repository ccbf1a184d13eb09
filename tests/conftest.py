"""Shared test set-up.

Service-only tests (marked `services`) need PostgreSQL and Redis. Under O2O_REQUIRE_SERVICES=1
(what .ci/run sets) they fail when the services are missing; otherwise they are skipped with
the reason, so `make test` on a laptop without them still runs everything else.
"""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API beside live_server


def services_available() -> tuple[bool, str]:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return False, "DATABASE_URL does not point at PostgreSQL"
    if not settings.REDIS_URL:
        return False, "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return False, f"Redis at REDIS_URL is unreachable: {error}"
    return True, ""


def pytest_collection_modifyitems(config, items):
    _gate_browser_tests(items)
    wanted = [item for item in items if item.get_closest_marker("services")]
    if not wanted:
        return
    ok, why = services_available()
    if ok:
        return
    if os.environ.get("O2O_REQUIRE_SERVICES") == "1":
        for item in wanted:
            item.add_marker(pytest.mark.usefixtures("_services_required_but_missing"))
    else:
        for item in wanted:
            item.add_marker(pytest.mark.skipif(True, reason=f"needs PostgreSQL and Redis: {why}"))


CHROMIUM = "/usr/bin/chromium"


def _gate_browser_tests(items):
    """Browser tests need Debian's chromium (.ci/run installs it); required wherever services are."""
    browser = [item for item in items if item.get_closest_marker("browser")]
    if not browser or os.path.exists(CHROMIUM):
        return
    if os.environ.get("O2O_REQUIRE_SERVICES") == "1":
        for item in browser:
            item.add_marker(pytest.mark.usefixtures("_chromium_required_but_missing"))
    else:
        for item in browser:
            item.add_marker(pytest.mark.skipif(True, reason=f"needs {CHROMIUM} (apt-get install chromium)"))


@pytest.fixture
def _chromium_required_but_missing():
    pytest.fail(f"O2O_REQUIRE_SERVICES=1 but {CHROMIUM} is missing")


@pytest.fixture
def _services_required_but_missing():
    pytest.fail("O2O_REQUIRE_SERVICES=1 but " + services_available()[1])


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Assertions read English messages; the zh-hans default is covered by its own tests.
    settings.LANGUAGE_CODE = "en"
    # Real hashing costs ~0.2 s a password; tests create hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Scans are written at once in tests; tests/orders/test_scan_buffer.py covers the Redis buffer.
    settings.SCAN_BUFFER = False
    # Pages show each change at once in tests; test_landing_queries.py covers the row cache.
    settings.LANDING_ROW_CACHE_SECONDS = 0
    from django.core.cache import caches

    caches["pages"].clear()


@pytest.fixture(autouse=True)
def _eager_celery():
    """In-process tests run tasks inline; the worker tests switch this off for their own app."""
    from o2o.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def demo(db):
    """Two merchants with stores, products and staff of every role (see tests/factories.py)."""
    from tests.factories import two_merchants

    return two_merchants()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }
