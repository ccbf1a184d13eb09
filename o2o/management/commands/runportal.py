"""`make run`'s last step: the web server, a Celery worker and Celery beat under one supervisor.

Each child runs in its own session, so a terminal Ctrl-C reaches only this command, which then stops
the children in order (SIGTERM, wait, SIGKILL of the whole process group after a timeout). Celery's warm
shutdown finishes the task in hand, which takes a few seconds on the filesystem broker.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEMO_LOGINS = [
    ("admin", "platform superuser (all merchants)"),
    ("manager", "manager of merchant demo"),
    ("cashier", "cashier of merchant demo (two stores)"),
    ("analyst", "analyst of merchant demo (read-only reports)"),
    ("rival_manager", "manager of merchant rival (isolation checks)"),
]


def _die_with_parent() -> None:
    """Runs in the child before exec: own session, and SIGTERM if this supervisor dies without cleaning up."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Child:
    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            self.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # safe: every child starts before any reader thread exists
        )

    def pump(self, out, lock: threading.Lock) -> None:
        """Copy the child's output line by line, prefixed with its name (honcho style)."""
        prefix = f"{self.name:<6} | ".encode()
        for line in iter(self.proc.stdout.readline, b""):
            with lock:
                out.write(prefix + line)
                out.flush()

    def signal_group(self, signum: int) -> bool:
        """Signal every process of the child's group (pool children, reloader); False when none is left."""
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            return False
        return True


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for_port(host: str, port: int, timeout: float, alive) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


class Command(BaseCommand):
    help = "Serve the portal with a Celery worker and beat; Ctrl-C or SIGTERM stops all of them."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8000"))
        parser.add_argument(
            "--server",
            choices=["runserver", "gunicorn"],
            default="runserver",
            help="runserver (default, no autoreload) or gunicorn (2 workers, as in production).",
        )
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes.")
        parser.add_argument(
            "--demo-password", default=os.environ.get("DEMO_PASSWORD", ""), help="Printed with the demo logins."
        )
        parser.add_argument("--stop-timeout", type=float, default=20.0, help="Seconds before SIGKILL.")

    def handle(
        self,
        *args,
        host: str,
        port: int,
        server: str,
        concurrency: int,
        demo_password: str,
        stop_timeout: float,
        **options,
    ):
        if not _port_free(host, port):
            raise CommandError(f"{host}:{port} is already in use; pick another port, e.g. `make run PORT={port + 1}`.")

        children = self._children(host, port, server, concurrency)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        stop = threading.Event()
        requested = {}

        def on_signal(signum, frame):
            requested["signal"] = signum
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        lock = threading.Lock()
        out = sys.stdout.buffer
        pumps: list[threading.Thread] = []
        try:
            # All children first, reader threads after: preexec_fn must not run beside other threads.
            for child in children:
                child.start(env)
            for child in children:
                pumps.append(threading.Thread(target=child.pump, args=(out, lock), daemon=True))
                pumps[-1].start()

            web_up = _wait_for_port(
                host, port, 30, lambda: not stop.is_set() and all(c.proc.poll() is None for c in children)
            )
            if web_up:
                with lock:
                    self.stdout.write(self._banner(host, port, demo_password))
                    self.stdout.flush()

            while not stop.wait(0.5):
                dead = [child for child in children if child.proc.poll() is not None]
                if dead:
                    names = ", ".join(f"{c.name} (exit {c.proc.returncode})" for c in dead)
                    self.stderr.write(f"runportal: {names} stopped on its own; stopping the rest.")
                    break
        finally:
            self._stop(children, stop_timeout)
            for pump in pumps:  # the children's last words (shutdown logs) before ours
                pump.join(timeout=2)

        if "signal" not in requested:
            raise CommandError("a portal process died; see its output above")
        self.stdout.write("runportal: web, worker and beat stopped.")

    def _children(self, host: str, port: int, server: str, concurrency: int) -> list[Child]:
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        if server == "gunicorn":
            web = [
                python,
                "-m",
                "gunicorn",
                "o2o.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
                "--chdir",
                str(settings.BASE_DIR),
            ]
        else:
            web = [python, manage, "runserver", f"{host}:{port}", "--noreload"]
        celery = [python, "-m", "celery", "-A", "o2o"]
        worker = [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "--hostname", "portal@%h"]
        beat = [*celery, "beat", "--loglevel", "INFO", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
        return [Child("web", web), Child("worker", worker), Child("beat", beat)]

    def _stop(self, children: list[Child], timeout: float) -> None:
        started = [child for child in children if child.proc is not None]
        # The leader first: a Celery worker's warm shutdown stops its own pool children.
        for child in started:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in started:
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"runportal: {child.name} ignored SIGTERM for {timeout:.0f}s; killing it.")
        # Whatever is left in a group (a pool child, the leader itself after the timeout) gets SIGKILL.
        for child in started:
            child.signal_group(signal.SIGKILL)
            child.proc.wait()

    def _banner(self, host: str, port: int, demo_password: str) -> str:
        base = f"http://{host}:{port}"
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            database = f"SQLite {db['NAME']}"
        else:
            database = _redacted(settings.DATABASE_URL)
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            broker = f"kombu filesystem transport in {settings.CELERY_BROKER_DIR} (one host only)"
        else:
            broker = _redacted(settings.CELERY_BROKER_URL)
        password = demo_password or "(the --password given to seed_demo)"
        lines = [
            "",
            "=" * 72,
            "O2O merchant portal is running. Ctrl-C stops the web server, worker and beat.",
            f"  Admin:     {base}/admin/",
            f"  API docs:  {base}/api/docs/   (schema: {base}/api/schema/)",
            f"  Database:  {database}",
            f"  Broker:    {broker}",
            f"  Demo logins, password {password}:",
            *(f"    {username:<14} {role}" for username, role in DEMO_LOGINS),
            "=" * 72,
            "",
        ]
        return "\n".join(lines)
