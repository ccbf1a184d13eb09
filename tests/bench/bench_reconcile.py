"""Reconciliation of a big settlement statement on PostgreSQL, against a plain COPY of the same file in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/o2o .venv/bin/python -m tests.bench.bench_reconcile
    ... -m tests.bench.bench_reconcile --lines 100000      # a quicker run

A throwaway database `<name>_bench_recon` on the server DATABASE_URL names is migrated and filled with COPY:
one merchant with N orders and N payments of one day (and a refund on every hundredth), and a statement of
that day in the sandbox's bill format (WeChat Pay's trade bill) with about N lines, a few of each kind of
discrepancy in every ten thousand (a lost notification to heal, a payment the bill lacks, a different
amount, a repeated line, a trade we never saw).

Each measurement runs in a fresh child process, so its peak RSS is its own:
- plain COPY: the statement file as it is, streamed with COPY into an unindexed one-column table (once cold,
  then three times warm; the warm median is the baseline);
- line reader only: WeChat Pay's trade-bill reader (the sandbox's too) drained over the file in Python,
  nothing written. Reconciliation on PostgreSQL does not read the bill this way (it stages it in bulk:
  orders/reconciliation/bulk.py) unless the bulk path declines a file; this shows what that would cost;
- reconcile: `reconciliation_run` as `manage.py reconcile --file` calls it: hash, parse, COPY to staging,
  set-based matching, heals, counts, commit;
- rerun: the same statement again (found by its hash; changes nothing).

Goal: reconcile ≤ 3× the plain COPY, peak RSS ≤ 300 MB. Prints a table and writes bench-results/reconcile.json.
Not a test: it never fails on numbers unless --strict.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

BASE_DIR = Path(__file__).resolve().parents[2]
GOAL_RATIO = 3.0
GOAL_RSS_MB = 300
DAY = date(2026, 11, 3)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = 10_000  # one of each anomaly per this many payments
HEAL, UNBILLED, MISMATCH, REPEATED = 7, 11, 13, 17  # n % PERIOD
PLAIN_TABLE = "bench_plain_copy"


# --------------------------------------------------------------------------- children (Django lives here)


def _django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.bench.settings"
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: kilobytes


def child_setup(args) -> dict:
    """Migrate, fill orders/payments/refunds with COPY, write the statement file."""
    _django(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from members.models import Member
    from merchants.models import Merchant
    from orders.models import Order, Payment, Refund
    from tests.factories import promotion

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    merchant = Merchant.objects.create(slug="bench", name="Bench Department Store", timezone="Asia/Shanghai")
    promo = promotion(merchant, stock_cap=10_000_000, per_member_limit=10_000_000)
    member = Member.objects.create(merchant=merchant, phone="+8613800138000")
    n_payments = args.lines
    day_start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=SHANGHAI)
    step = 86_400 / n_payments
    created = day_start.astimezone(UTC).isoformat()

    def paid_at(n: int) -> datetime:
        return day_start + timedelta(seconds=int(n * step))

    def cents(n: int) -> int:
        return 1000 + n % 5000

    def waiting(n: int) -> bool:
        return n % PERIOD == HEAL

    with connection.cursor() as cursor:
        _copy(cursor, Order, ["id", "merchant_id", "promotion_id", "member_id", "token", "submit_key", "status",
                              "quantity", "unit_price", "subtotal", "total", "currency", "fulfilment", "created_at",
                              "paid_at"], (
            (n + 1, merchant.pk, promo.pk, member.pk, f"bench{n:011d}", f"bench-{n}",
             "pending_payment" if waiting(n) else "paid", 1, _yuan(cents(n)), _yuan(cents(n)), _yuan(cents(n)),
             "CNY", "express", created, None if waiting(n) else paid_at(n).isoformat())
            for n in range(n_payments)
        ))  # fmt: skip
        _copy(cursor, Payment, ["id", "merchant_id", "order_id", "provider", "out_trade_no", "provider_trade_no",
                                "amount", "currency", "status", "refunded_amount", "created_at", "paid_at"], (
            (n + 1, merchant.pk, n + 1, "sandbox", f"BENCH{n:010d}", "" if waiting(n) else f"4200{n:016d}",
             _yuan(cents(n)), "CNY", "created" if waiting(n) else "paid", "1.00" if n % 100 == 50 else "0.00",
             created, None if waiting(n) else paid_at(n).isoformat())
            for n in range(n_payments)
        ))  # fmt: skip
        _copy(cursor, Refund, ["id", "merchant_id", "payment_id", "order_id", "out_refund_no", "provider_refund_no",
                               "amount", "reason", "status", "created_at", "completed_at"], (
            (n + 1, merchant.pk, n + 1, n + 1, f"BENCHRF{n:010d}", f"5030{n:016d}", "1.00", "customer asked",
             "succeeded", created, (paid_at(n) + timedelta(seconds=1)).isoformat())
            for n in range(50, n_payments, 100)
        ))  # fmt: skip
        for table in ("orders_order", "orders_payment", "orders_refund"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    connection.close()
    with connection.cursor() as cursor:  # autocommit: ANALYZE so the planner knows the tables it plans for
        cursor.execute("VACUUM ANALYZE orders_order, orders_payment, orders_refund")

    lines = _write_statement(Path(args.file), n_payments, paid_at, cents)
    return {
        "payments": n_payments,
        "statement_lines": lines,
        "statement_bytes": Path(args.file).stat().st_size,
        "setup_seconds": round(time.perf_counter() - started, 1),
    }


def _copy(cursor, model, columns: list[str], rows) -> None:
    """COPY `rows` into `model`'s table; NOT NULL columns not named get the field's default."""
    from django.db import connection

    extra = []
    for field in model._meta.concrete_fields:
        if field.column in columns or field.null or field.primary_key:
            continue
        value = field.get_default() if field.has_default() else ("" if field.empty_strings_allowed else None)
        extra.append((field.column, field.get_db_prep_save(value, connection)))
    names = ", ".join(columns + [column for column, _value in extra])
    tail = tuple(value for _column, value in extra)
    with cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row + tail)


def _yuan(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _write_statement(path: Path, n_payments: int, paid_at, cents) -> int:
    """The sandbox's bill format (WeChat Pay's 27-column trade bill), streamed to `path`."""
    from orders.payments.providers.sandbox import BILL_COLUMNS, SUMMARY_COLUMNS

    count = trades = refunds = fees = 0

    def fee_of(minor: int) -> int:
        return (minor * 6 + 500) // 1000

    def fee_text(minor: int) -> str:
        return ("-" if minor < 0 else "") + _yuan(abs(minor)) + "000"

    def row(when, provider_no, out_trade_no, state, settled, refund_no, out_refund_no, refund, fee, ordered):
        cells = [
            when.strftime("%Y-%m-%d %H:%M:%S"), "sandbox", "sandbox-bench", "0", "", provider_no, out_trade_no,
            "sandbox-customer", "NATIVE", state, "OTHERS", "CNY", settled, "0.00", refund_no, out_refund_no, refund,
            "0.00", "ORIGINAL" if state == "REFUND" else "", "SUCCESS" if state == "REFUND" else "", "Order", "",
            fee_text(fee), "0.60%", ordered, refund, "",
        ]  # fmt: skip
        return ",".join("`" + cell for cell in cells) + "\r\n"

    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(BILL_COLUMNS) + "\r\n")
        for n in range(n_payments):
            r = n % PERIOD
            if r == UNBILLED:
                continue
            billed = cents(n) + (1 if r == MISMATCH else 0)
            fee = fee_of(billed)
            line = row(paid_at(n), f"4200{n:016d}", f"BENCH{n:010d}", "SUCCESS", _yuan(billed), "", "", "0.00", fee,
                       _yuan(billed))  # fmt: skip
            for _ in range(2 if r == REPEATED else 1):
                out.write(line)
                count, trades, fees = count + 1, trades + billed, fees + fee
            if n % 100 == 50:
                fee = -fee_of(100)
                out.write(row(paid_at(n) + timedelta(seconds=1), f"4200{n:016d}", f"BENCH{n:010d}", "REFUND", "0.00",
                              f"5030{n:016d}", f"BENCHRF{n:010d}", "1.00", fee, "0.00"))  # fmt: skip
                count, refunds, fees = count + 1, refunds + 100, fees + fee
        for k in range(max(n_payments // PERIOD, 1)):
            out.write(row(paid_at(k), f"4299{k:016d}", f"NEVER-HEARD-{k}", "SUCCESS", "5.00", "", "", "0.00",
                          fee_of(500), "5.00"))  # fmt: skip
            count, trades, fees = count + 1, trades + 500, fees + fee_of(500)
        out.write(",".join(SUMMARY_COLUMNS) + "\r\n")
        summary = [str(count), _yuan(trades), _yuan(refunds), "0.00", fee_text(fees), _yuan(trades), _yuan(refunds)]
        out.write(",".join("`" + cell for cell in summary) + "\r\n")
    return count


def child_copy(args) -> dict:
    """The floor: the statement's bytes into an unindexed table with COPY, nothing parsed in Python."""
    import psycopg

    with psycopg.connect(args.database_url) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
        connection.execute(f"CREATE TABLE {PLAIN_TABLE} (line text)")
        connection.commit()
        rss_before = _peak_rss_mb()
        started = time.perf_counter()
        with connection.cursor() as cursor, open(args.file, "rb") as stream:
            # One column per line: a delimiter and a quote that never occur in a bill.
            with cursor.copy(f"COPY {PLAIN_TABLE} (line) FROM STDIN (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')"
                             ) as copy:  # fmt: skip
                while chunk := stream.read(1024 * 1024):
                    copy.write(chunk)
        connection.commit()
        seconds = time.perf_counter() - started
        rows = connection.execute(f"SELECT COUNT(*) FROM {PLAIN_TABLE}").fetchone()[0]
        connection.execute(f"DROP TABLE {PLAIN_TABLE}")
        connection.commit()
    return {"seconds": round(seconds, 3), "rows": rows, "peak_rss_mb": _peak_rss_mb(), "rss_at_start_mb": rss_before}


def child_parse(args) -> dict:
    """The Python trade-bill reader alone, drained over the file."""
    _django(args.database_url)
    from orders.payments.providers.wechatpay import tradebill_lines

    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    with open(args.file, "rb") as stream:
        lines = sum(1 for _line in tradebill_lines(stream))
    return {"seconds": round(time.perf_counter() - started, 3), "lines": lines, "peak_rss_mb": _peak_rss_mb(),
            "rss_at_start_mb": rss_before}  # fmt: skip


def child_reconcile(args) -> dict:
    """`reconciliation_run` exactly as the command calls it (the sandbox provider's parser), timed by phase."""
    _django(args.database_url)
    from merchants.models import Merchant
    from orders.reconciliation import services

    phases: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*a, **kw):
            started = time.perf_counter()
            try:
                return function(*a, **kw)
            finally:
                phases[name] = round(phases.get(name, 0) + time.perf_counter() - started, 3)

        return wrapper

    services.statement_stage = timed("line-by-line parse + COPY to staging", services.statement_stage)
    services.tradebill_stage = timed("bulk staging (COPY + typing in SQL)", services.tradebill_stage)
    services.statement_match = timed("set-based matching (SQL)", services.statement_match)
    services._heal = timed("heals (notification path)", services._heal)
    merchant = Merchant.objects.get(slug="bench")
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    with open(args.file, "rb") as stream:
        run = services.reconciliation_run(
            merchant=merchant, provider="sandbox", statement_date=DAY, stream=stream, source="command"
        )
    seconds = time.perf_counter() - started
    counts = [
        "status", "lines_total", "matched", "amount_mismatch", "missing_here", "healed", "missing_at_provider",
        "refund_mismatch", "duplicate", "trades_total", "refunds_total", "fees_total", "net_total", "error",
    ]  # fmt: skip
    return {
        "seconds": round(seconds, 3), "peak_rss_mb": _peak_rss_mb(), "rss_at_start_mb": rss_before,
        "phases": phases, "run": {name: str(getattr(run, name)) for name in counts},
    }  # fmt: skip


CHILDREN = {"setup": child_setup, "copy": child_copy, "parse": child_parse, "reconcile": child_reconcile,
            "rerun": child_reconcile}  # fmt: skip


# --------------------------------------------------------------------------- orchestration


def _child(name: str, database_url: str, file: Path, lines: int) -> dict:
    command = [sys.executable, "-m", "tests.bench.bench_reconcile", "--child", name, "--database-url", database_url,
               "--file", str(file), "--lines", str(lines)]  # fmt: skip
    done = subprocess.run(command, cwd=BASE_DIR, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def _throwaway_database():
    import psycopg
    from psycopg import sql

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = f"{parts.path.lstrip('/') or 'o2o'}_bench_recon"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _table(result: dict) -> str:
    copy, cold, reconcile = result["plain_copy"], result["plain_copy_cold"], result["reconcile"]
    rows = [
        ("plain COPY of the file (cold)", cold["seconds"], cold["peak_rss_mb"]),
        ("plain COPY of the file (baseline: warm median)", copy["seconds"], copy["peak_rss_mb"]),
        ("line reader only (the fallback; not used here)", result["parse_only"]["seconds"],
         result["parse_only"]["peak_rss_mb"]),
        ("reconcile", reconcile["seconds"], reconcile["peak_rss_mb"]),
        *((f"  of which {name}", seconds, None) for name, seconds in reconcile["phases"].items()),
        ("rerun (same statement: no change)", result["rerun"]["seconds"], result["rerun"]["peak_rss_mb"]),
    ]  # fmt: skip
    out = [f"{'':48} {'seconds':>9} {'peak RSS MB':>12}"]
    out += [f"{label:48} {seconds:>9.2f} {'' if rss is None else f'{rss:>12.1f}'}" for label, seconds, rss in rows]
    out.append(
        f"\n{result['statement_lines']:,} statement lines ({result['statement_bytes'] / 1e6:.0f} MB) against "
        f"{result['payments']:,} payments: reconcile/COPY = {result['ratio']:.2f}× (goal ≤ {GOAL_RATIO:g}×), "
        f"peak RSS {reconcile['peak_rss_mb']:.0f} MB (goal ≤ {GOAL_RSS_MB} MB): "
        + ("goals met" if result["meets_goal"] else "GOAL MISSED")
    )
    run = reconcile["run"]
    out.append("run: " + ", ".join(f"{name} {value}" for name, value in run.items() if value not in ("", "None")))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="payments (and about as many statement lines)")
    parser.add_argument("--output", default=str(BASE_DIR / "bench-results" / "reconcile.json"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))  # noqa: T201
        return
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        # `make bench` runs everywhere; this one means something on PostgreSQL only.
        print("bench_reconcile skipped: needs DATABASE_URL=postgres://... (the server to create the bench database on)")  # noqa: T201
        return

    with tempfile.TemporaryDirectory(prefix="o2o-bench-recon-") as folder, _throwaway_database() as url:
        file = Path(folder) / "statement.csv"
        print(f"setting up {args.lines:,} payments and their statement (COPY) ...", flush=True)  # noqa: T201
        result = _child("setup", url, file, args.lines)
        result["plain_copy_cold"] = _child("copy", url, file, args.lines)
        # The baseline is the median of three warm runs: other work on the machine moves single runs a lot.
        warm = sorted((_child("copy", url, file, args.lines) for _ in range(3)), key=lambda r: r["seconds"])
        result["plain_copy"] = {**warm[1], "runs_seconds": [r["seconds"] for r in warm]}
        result["parse_only"] = _child("parse", url, file, args.lines)
        result["reconcile"] = _child("reconcile", url, file, args.lines)
        result["rerun"] = _child("rerun", url, file, args.lines)
    copy_seconds = result["plain_copy"]["seconds"]
    result["ratio"] = round(result["reconcile"]["seconds"] / copy_seconds, 2)
    # Each phase as a multiple of the plain COPY: where the rest of the budget goes.
    result["phase_ratios"] = {
        name: round(seconds / copy_seconds, 2) for name, seconds in result["reconcile"]["phases"].items()
    }
    result["meets_goal"] = result["ratio"] <= GOAL_RATIO and result["reconcile"]["peak_rss_mb"] <= GOAL_RSS_MB
    result["goal"] = {"ratio_max": GOAL_RATIO, "peak_rss_mb_max": GOAL_RSS_MB}
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(_table(result))  # noqa: T201
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")  # noqa: T201
    if args.strict and not result["meets_goal"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
