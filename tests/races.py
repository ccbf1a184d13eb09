"""Races on PostgreSQL: each contender in its own thread with its own connection, all released at one
instant by a barrier. SQLite serialises writers on one file lock, so these mean something only there."""

import threading
import time
from collections.abc import Callable

from django.db import connection


def free_connection_slots() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
        return cursor.fetchone()[0]


def connection_holders() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname, application_name, state, count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' GROUP BY 1, 2, 3 ORDER BY 4 DESC"
        )
        return cursor.fetchall()


def close_leftover_connections() -> None:
    """Idle connections to this run's own test database that earlier tests' threads left open.

    The test database belongs to this pytest run alone and a transactional test uses one connection,
    so any other idle one is a leftover; each costs the race one of its 100 contenders."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
        )


def wait_for_connection_slots(needed: int, *, timeout: float = 300) -> None:
    """A 100-way race takes 100 connections: PostgreSQL's default limit, less this test's own. Wait for
    other test runs on the same server to finish rather than fail with 'too many clients'."""
    close_leftover_connections()
    deadline = time.monotonic() + timeout
    while (free := free_connection_slots() + 1) < needed:  # +1: this test's own, closed before the race
        assert time.monotonic() < deadline, (
            f"PostgreSQL has {free} free connections; the race needs {needed}. Held: {connection_holders()}"
        )
        time.sleep(1)
    connection.close()


def race(count: int, attempt: Callable[[int], object]) -> list[object]:
    """Run attempt(0..count-1) in `count` threads on their own connections, all released at one instant;
    return each result or the exception it raised."""
    wait_for_connection_slots(count)
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        try:
            connection.ensure_connection()  # connect before the barrier: the race is the redeem, not the login
            barrier.wait(timeout=60)
            results[i] = attempt(i)
        except Exception as error:  # noqa: BLE001 - every outcome is inspected by the test
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a contender hung (deadlock?)"
    return results
