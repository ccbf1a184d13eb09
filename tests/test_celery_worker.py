"""A real `celery worker` process consumes tasks through Redis and writes to the PostgreSQL test database.

The worker listens on a queue of its own (a fresh name per test run), so a `make run` worker on the same
Redis cannot take these messages, and this worker takes nobody else's.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone
from kombu import Exchange, Queue

from o2o.celery import app
from o2o.tasks import sessions_clear_expired
from tests.conftest import services_available

pytestmark = pytest.mark.services


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll until `predicate()` holds or `timeout` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def worker_database_url() -> str:
    """DATABASE_URL with the database name swapped for pytest-django's test database (test_o2o, test_o2o_gw0)."""
    from django.db import connection

    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class CeleryWorker:
    """One `celery -A o2o worker` subprocess on its own queue; start() waits until it says it is ready."""

    def __init__(self, *, log_dir: Path, queue: str | None = None, pool: str = "prefork", concurrency: int = 1):
        self.queue = queue or f"o2o-test-{uuid.uuid4().hex[:12]}"
        self.hostname = f"{self.queue}@{socket.gethostname()}"
        self.pool = pool
        self.concurrency = concurrency
        self.log_path = log_dir / f"{self.queue}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *, timeout: float = 30) -> "CeleryWorker":
        env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "o2o.settings",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        argv = [
            sys.executable, "-m", "celery", "-A", "o2o", "worker",
            "--queues", self.queue,
            "--hostname", self.hostname,
            "--pool", self.pool,
            "--concurrency", str(self.concurrency),
            "--loglevel", "INFO",
            # Nothing to learn from (or leak to) other workers on the same Redis.
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches the pool children too
            )
        if not wait_until(lambda: " ready." in self.log() or self.proc.poll() is not None, timeout=timeout):
            self.stop()
            pytest.fail(f"celery worker not ready after {timeout}s:\n{self.log()}")
        if self.proc.poll() is not None:
            pytest.fail(f"celery worker exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crashed host would."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def stop(self, *, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM) first; SIGKILL whatever is left after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def delete_queue(self) -> None:
        """Drop the queue and its binding from Redis so test runs leave nothing behind."""
        # kombu forgets a binding only on the channel that declared it, so declare, then delete.
        with app.connection_for_write() as connection:
            queue = Queue(self.queue, Exchange(self.queue), routing_key=self.queue)(connection.default_channel)
            queue.declare()
            queue.delete()


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[CeleryWorker]:
    """A worker bound to the test database for the whole module; stopped before the test database is dropped."""
    # Module fixtures run before the per-test services check in conftest.py: fail fast with its reason
    # instead of waiting for a worker that cannot reach its broker.
    ok, why = services_available()
    if not ok:
        pytest.fail(f"a real Celery worker needs PostgreSQL and Redis: {why}")
    worker = CeleryWorker(log_dir=tmp_path_factory.mktemp("celery-worker")).start()
    try:
        yield worker
    finally:
        worker.stop()
        worker.delete_queue()


@pytest.fixture
def celery_via_broker(_eager_celery) -> Iterator[None]:
    """Send tasks through the broker for this test (conftest makes them run inline by default)."""
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


@pytest.mark.django_db(transaction=True)
def test_worker_process_clears_expired_sessions_through_redis(celery_worker, celery_via_broker):
    # given one expired and one live session, committed where the worker's own connection can see them
    now = timezone.now()
    expired = Session.objects.create(session_key=uuid.uuid4().hex, session_data="e30=", expire_date=now - timedelta(1))
    live = Session.objects.create(session_key=uuid.uuid4().hex, session_data="e30=", expire_date=now + timedelta(1))

    # when the task goes through Redis to the worker process
    result = sessions_clear_expired.apply_async(queue=celery_worker.queue)

    # then the worker deletes the expired row in PostgreSQL and keeps the live one
    gone = wait_until(lambda: not Session.objects.filter(pk=expired.pk).exists(), timeout=30)
    assert gone, f"expired session still there after 30s; worker log:\n{celery_worker.log()}"
    assert Session.objects.filter(pk=live.pk).exists()
    # (the worker logs success just after its transaction commits, so allow it a moment)
    succeeded = f"Task o2o.tasks.sessions_clear_expired[{result.id}] succeeded"
    assert wait_until(lambda: succeeded in celery_worker.log(), timeout=5), celery_worker.log()
