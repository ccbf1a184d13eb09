"""What the HTTP benchmarks share: throwaway databases, gunicorn on loopback, client processes, summaries.

No Django at import time: the orchestrating process and the client processes never configure it; only the
child that serves one database does (see each benchmark's run_one).
"""

import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Set by tests/bench/query_count.py when O2O_BENCH_QUERY_HEADER=1: the SQL statements that did work (not
# transaction control) in the request, as the server counted them.
QUERIES_HEADER = "X-Bench-Queries"
TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")


def is_transaction_control(sql: str) -> bool:
    """SAVEPOINT/RELEASE SAVEPOINT (nested atomic blocks), BEGIN (SQLite), ... : round trips, not work."""
    return sql.lstrip().upper().startswith(TRANSACTION_CONTROL)


class Call(NamedTuple):
    """One HTTP request a client process sends."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict | None = None


# --------------------------------------------------------------------------- client side (no Django here)


def calls_send(port: int, calls: list[Call]) -> dict:
    """The calls in turn, each on a fresh connection (gunicorn's sync workers close after each response)."""
    ok = errors = 0
    latencies, queries = [], []
    statuses: Counter = Counter()
    for call in calls:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            connection.request(call.method, call.path, body=call.body, headers=call.headers or {})
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
            if response.status == 200:
                ok += 1
            else:
                errors += 1
            counted = response.getheader(QUERIES_HEADER)
            if counted is not None:
                queries.append(int(counted))
        except OSError:
            statuses[0] += 1  # no answer at all: refused, reset, timed out
            errors += 1
        finally:
            connection.close()
        latencies.append(time.perf_counter() - started)
    return {"ok": ok, "errors": errors, "latencies": latencies, "statuses": statuses, "queries": queries}


def measure(pool: ProcessPoolExecutor, port: int, calls: list[Call], concurrency: int) -> dict:
    """Send `calls` from `concurrency` client processes at once (consecutive shares); wall time of the lot."""
    n = len(calls)
    sizes = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
    shares, start = [], 0
    for size in sizes:
        shares.append(calls[start:start + size])
        start += size
    started = time.perf_counter()
    results = [future.result() for future in [pool.submit(calls_send, port, share) for share in shares if share]]
    elapsed = time.perf_counter() - started
    return {
        "ok": sum(r["ok"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "seconds": elapsed,
        "latencies": [latency for r in results for latency in r["latencies"]],
        "statuses": sum((r["statuses"] for r in results), Counter()),
        "queries": [q for r in results for q in r["queries"]],
    }


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[max(int(len(ordered) * fraction) - 1, 0)] * 1000, 2)


def summary(samples: list[dict]) -> dict:
    ok = sum(s["ok"] for s in samples)
    seconds = sum(s["seconds"] for s in samples)
    latencies = sorted(latency for s in samples for latency in s["latencies"])
    statuses = sum((Counter(s.get("statuses", {})) for s in samples), Counter())
    result = {
        "requests": ok + sum(s["errors"] for s in samples),
        "errors": sum(s["errors"] for s in samples),
        "seconds": round(seconds, 3),
        "rps": round(ok / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p95_ms": _percentile(latencies, 0.95),
        "p99_ms": _percentile(latencies, 0.99),
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
    }
    queries = [q for s in samples for q in s.get("queries", [])]
    if queries:  # counted by the server for each request (O2O_BENCH_QUERY_HEADER=1)
        result["server_queries"] = {
            "min": min(queries), "median": statistics.median(queries), "max": max(queries),
            "histogram": {str(q): n for q, n in sorted(Counter(queries).items())},
        }
    return result


# --------------------------------------------------------------------------- server side


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn_serving(*, env: dict, workers: int, probe_path: str):
    """gunicorn with sync workers on a free loopback port, once `probe_path` answers 200; yields the port."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "o2o.wsgi:application", "--bind", f"{HOST}:{port}",
        "--workers", str(workers), "--worker-class", "sync", "--backlog", "2048", "--log-level", "warning",
    ]
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}")
            if calls_send(port, [Call("GET", probe_path)])["ok"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --------------------------------------------------------------------------- databases


@contextmanager
def throwaway_database(kind: str):
    """A database URL that exists only for this run, and a temporary folder (O2O_VAR_DIR) beside it."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="o2o-bench-"))
        try:
            yield f"sqlite:///{folder / 'bench.sqlite3'}", folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    from psycopg import sql

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = f"{parts.path.lstrip('/') or 'o2o'}_bench"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    folder = Path(tempfile.mkdtemp(prefix="o2o-bench-"))
    with _admin_connection(admin_url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}")), folder
    finally:
        with _admin_connection(admin_url) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        shutil.rmtree(folder, ignore_errors=True)


def _admin_connection(url: str, *, patience: float = 120):
    """An autocommit connection to the server's `postgres` database. A shared server may be full for a while
    (a test suite's 100-way race): wait for a free slot instead of losing the run."""
    import psycopg

    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def databases_for(choice: str) -> list[str]:
    """The kinds of database to run on: SQLite, plus PostgreSQL when DATABASE_URL points at one (auto)."""
    has_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    if choice == "postgres" and not has_postgres:
        sys.exit("--db postgres needs DATABASE_URL=postgres://... (the server to create a bench database on)")
    if choice == "auto":
        return ["sqlite", "postgres"] if has_postgres else ["sqlite"]
    return [choice]


def database_version(connection) -> str:
    if connection.vendor == "sqlite":
        return ".".join(str(n) for n in connection.Database.sqlite_version_info)
    return f"{connection.pg_version // 10000}.{connection.pg_version % 100}"
