"""Bench-only middleware: each response says how many SQL statements its request sent to the database.

On only when O2O_BENCH_QUERY_HEADER=1 (tests/bench/settings.py), so the landing benchmark's server stays
as it was. It counts the statements Django's cursors execute that do work; transaction control (savepoints
of nested atomic blocks) is left out, and BEGIN/COMMIT that the driver sends on its own (PostgreSQL) are
not seen here: bench_redeem counts both in-process.
"""

from django.db import connection

from tests.bench.common import QUERIES_HEADER, is_transaction_control


def query_count_header(get_response):
    def middleware(request):
        count = 0

        def counted(execute, sql, params, many, context):
            nonlocal count
            count += not is_transaction_control(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counted):
            response = get_response(request)
        response[QUERIES_HEADER] = str(count)
        return response

    return middleware
