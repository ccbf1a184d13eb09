"""Pickup redemption through the POS API, against a trivial authenticated DRF view in the same run.

    .venv/bin/python -m tests.bench.bench_redeem                  # SQLite, and PostgreSQL if DATABASE_URL is one
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/o2o .venv/bin/python -m tests.bench.bench_redeem --db postgres
    ... -m tests.bench.bench_redeem --requests 300 --rounds 2     # a quicker run

For each database: a throwaway database (as the landing benchmark: a temporary SQLite file; a `<name>_bench`
database on the PostgreSQL server DATABASE_URL names), migrated and seeded with a merchant of three stores,
one POS cashier (with an API token) per client at one of them, and enough paid pickup orders that every
redeem hands a different, fresh voucher over: the benchmark measures real hand-overs, never refusals.
gunicorn serves the project on loopback with the bench urlconf (tests/bench/urls.py); client processes send
`POST /api/v1/pickups/{code}/redeem/` (token, Idempotency-Key, terminal name) and, as the yardstick, `GET
/bench/trivial-api` (the same token authentication, IsAuthenticated, a tiny JSON body), in interleaved
rounds so that drift on the machine hits both alike.

Queries per redeem are counted twice: in-process through Django's test client on the same database before
the load (every statement listed with the code that issued it, and the transactions), and by the server for
every request of the load (a bench-only middleware, tests/bench/query_count.py). Afterwards the database
must show every voucher sent redeemed exactly once (one redemption, one event) and every other one untouched.

Goals (issue 5): redeem req/s ≥ 0.6 × trivial req/s, and at most 5 queries per redeem. Prints a table and
writes bench-results/redeem.json. Not a test: it never fails on numbers unless --strict.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.common import (
    BASE_DIR,
    Call,
    database_version,
    databases_for,
    gunicorn_serving,
    is_transaction_control,
    measure,
    summary,
    throwaway_database,
)

GOAL_RATIO = 0.6
GOAL_QUERIES = 5
STORES = 3
SPARE_ORDERS = 20  # paid vouchers nobody redeems: they must still be paid afterwards
TRIVIAL_PATH = "/bench/trivial-api"
PROBE_PATH = "/bench/trivial"  # unauthenticated: answers 200 as soon as a worker is up


# --------------------------------------------------------------------------- one database (runs in a child process)


def _orders_needed(args: argparse.Namespace) -> int:
    # two in-process redeems (first, steady), the warm-up, the rounds, and the spares
    return 2 + args.concurrency * 5 + args.rounds * args.requests + SPARE_ORDERS


def _seed(*, orders: int, cashiers: int) -> dict:
    """A merchant with three stores, a bundle of three products, POS cashiers with tokens, paid vouchers."""
    from rest_framework.authtoken.models import Token

    from merchants.services import staff_member_create
    from orders.services import order_mark_paid, order_place
    from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion

    merchant = MerchantFactory(slug="bench", name="Bench Department Store")
    stores = [
        StoreFactory(merchant=merchant, name=f"Bench store {i}", code=f"bench-{i}") for i in range(STORES)
    ]
    products = [ProductFactory(merchant=merchant, name=f"Bench product {i}", sku=f"BENCH-{i}") for i in range(3)]
    promo = promotion(
        merchant, products=[(p, 1 + i) for i, p in enumerate(products)], stores=stores, stock_cap=10_000_000,
        per_member_limit=5, title="Longjing tea gift set",
    )
    tokens: dict[str, list[str]] = {store.code: [] for store in stores}
    for i in range(cashiers):
        store = stores[i % STORES]
        role = staff_member_create(merchant=merchant, username=f"pos{i}", password=None, role="cashier",
                                   stores=[store])
        tokens[store.code].append(Token.objects.create(user=role.user).key)
    vouchers = []
    for i in range(orders):
        store = stores[i % STORES]
        order = order_place(promotion=promo, quantity=1, phone=f"138{i:08d}", fulfilment="pickup",
                            submit_key=f"bench-{i}", pickup_store=store)
        vouchers.append((order_mark_paid(order=order).pickup_code, store.code))
    return {"vouchers": vouchers, "tokens": tokens}


def _redeem_calls(vouchers: list[tuple[str, str]], tokens: dict[str, list[str]], tag: str) -> list[Call]:
    """One POST per voucher, from a cashier of the voucher's store (their only store: no store in the body)."""
    calls = []
    for n, (code, store) in enumerate(vouchers):
        token = tokens[store][n % len(tokens[store])]
        calls.append(Call("POST", f"/api/v1/pickups/{code}/redeem/", b"{}", {
            "Authorization": f"Token {token}", "Content-Type": "application/json",
            "Idempotency-Key": f"{tag}-{code}", "X-Client-Name": f"bench-pos-{token[:6]}",
        }))
    return calls


def _trivial_calls(count: int, tokens: dict[str, list[str]]) -> list[Call]:
    every = [token for store in sorted(tokens) for token in tokens[store]]
    return [Call("GET", TRIVIAL_PATH, None, {"Authorization": f"Token {every[n % len(every)]}"})
            for n in range(count)]


def _sql_summary(sql: str) -> str:
    """`SELECT auth_user, authtoken_token`: the verb and the tables, in order of appearance."""
    tables = []
    for table in re.findall(r'(?:FROM|JOIN|INTO|UPDATE)\s+"(\w+)"', sql):
        if table not in tables:
            tables.append(table)
    words = sql.split()
    if tables:
        return f"{words[0].upper()} {', '.join(tables)}"
    return " ".join(w for w in words[:2] if not w.startswith('"'))  # SAVEPOINT "s1_x2" -> SAVEPOINT


def _issuer() -> str:
    """Who sent the statement: the chain of project frames (outermost first), else the innermost library frame
    outside django.db (e.g. DRF's token authentication)."""
    frames = traceback.extract_stack()[:-2]  # drop this function and the execute wrapper
    own = [f for f in frames if f.filename.startswith(str(BASE_DIR)) and "/.venv/" not in f.filename
           and "/tests/" not in f.filename]
    if own:
        return " > ".join(f"{Path(f.filename).relative_to(BASE_DIR)}:{f.lineno} {f.name}" for f in own[-3:])
    for frame in reversed(frames):
        if "/django/db/" not in frame.filename and "/tests/" not in frame.filename:
            package_path = frame.filename.split("site-packages/")[-1]
            return f"{package_path}:{frame.lineno} {frame.name}"
    return "?"


@contextmanager
def _statements_recorded():
    """Every statement Django sends on the default connection, with its issuer; and the commits."""
    from django.db import connections

    connection = connections["default"]
    record = {"statements": [], "commits": 0}
    real_commit = connection.commit

    def counted_commit():
        record["commits"] += 1
        return real_commit()

    def recorded(execute, sql, params, many, context):
        record["statements"].append({"sql": sql, "summary": _sql_summary(sql), "issued_by": _issuer(),
                                     "transaction_control": is_transaction_control(sql)})
        return execute(sql, params, many, context)

    connection.commit = counted_commit  # Atomic.__exit__ commits through the wrapper: count it there
    try:
        with connection.execute_wrapper(recorded):
            yield record
    finally:
        del connection.commit


def _queries_in_process(vouchers: list[tuple[str, str]], tokens: dict[str, list[str]]) -> dict:
    """One trivial request and two redeems (first, steady) through the whole stack, statements recorded."""
    from django.db import connection
    from django.test import Client

    client = Client()
    connection.ensure_connection()  # a served request's connection is already open (CONN_MAX_AGE)
    seen = {}
    for visit, call in [
        ("trivial_api", _trivial_calls(1, tokens)[0]),
        *zip(("redeem_first", "redeem_steady"), _redeem_calls(vouchers, tokens, "inprocess"), strict=True),
    ]:
        headers = {k: v for k, v in call.headers.items() if k != "Content-Type"}
        with _statements_recorded() as record:
            if call.method == "POST":
                response = client.post(call.path, data=call.body, content_type="application/json", headers=headers)
            else:
                response = client.get(call.path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{visit} {call.path} answered {response.status_code}: {response.content[:300]!r}")
        statements = record["statements"]
        seen[visit] = {
            "queries": sum(not s["transaction_control"] for s in statements),
            "transaction_control": sum(s["transaction_control"] for s in statements),
            "transactions_committed": record["commits"],
            # On PostgreSQL psycopg sends each transaction's BEGIN itself, unseen by Django: one more each.
            "round_trips": len(statements) + record["commits"] * (2 if connection.vendor == "postgresql" else 1),
            "statements": statements,
        }
    return seen


def _verify(vouchers: list[tuple[str, str]], sent: int, ok: int) -> dict:
    """What the database says afterwards: no voucher handed over twice, one redemption and one event for each
    200 answer, the vouchers nobody sent still paid; and whether every voucher sent was handed over."""
    from django.db.models import Count

    from orders.models import Order, OrderEvent
    from orders.pickups.models import Redemption

    used = {code for code, _store in vouchers[:sent]}
    spare = {code for code, _store in vouchers[sent:]}
    picked_up = Order.objects.filter(pickup_code__in=used, status=Order.Status.PICKED_UP).count()
    per_order = list(Redemption.objects.values("order").annotate(n=Count("id")).values_list("n", flat=True))
    events = OrderEvent.objects.filter(to_status=Order.Status.PICKED_UP).count()
    spare_paid = Order.objects.filter(pickup_code__in=spare, status=Order.Status.PAID).count()
    report = {
        "vouchers_sent": len(used),
        "answered_200": ok,
        "orders_picked_up": picked_up,
        "orders_redeemed_exactly_once": per_order.count(1),
        "orders_redeemed_more_than_once": sum(n > 1 for n in per_order),
        "redemptions": sum(per_order),
        "picked_up_events": events,
        "spare_vouchers_still_paid": f"{spare_paid}/{len(spare)}",
    }
    report["exactly_once"] = (
        report["orders_redeemed_more_than_once"] == 0
        and ok == picked_up == report["orders_redeemed_exactly_once"] == report["redemptions"] == events
        and spare_paid == len(spare)
    )
    report["all_handed_over"] = ok == len(used)
    report["ok"] = report["exactly_once"] and report["all_handed_over"]
    return report


def run_one(args: argparse.Namespace) -> dict:
    """Set up one database, serve it, measure, verify. Django is configured here, once per child process."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.bench.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DB_CONN_MAX_AGE"] = str(args.conn_max_age)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    call_command("migrate", verbosity=0, interactive=False)
    seeded = _seed(orders=_orders_needed(args), cashiers=max(args.concurrency, STORES))  # one per client
    vouchers, tokens = seeded["vouchers"], seeded["tokens"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # statistics, as a database that has lived would have them
            cursor.execute("ANALYZE")
    in_process = _queries_in_process(vouchers[:2], tokens)
    vendor, version = connection.vendor, database_version(connection)
    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    connections.close_all()

    env = {**os.environ, "PYTHONPATH": str(BASE_DIR), "O2O_BENCH_QUERY_HEADER": "1"}
    samples: dict[str, list[dict]] = {"trivial_api": [], "redeem": []}
    sent = 2  # vouchers used so far: the in-process redeems
    handed_over = 2

    def calls_for(view: str, count: int, tag: str) -> list[Call]:
        nonlocal sent
        if view == "trivial_api":
            return _trivial_calls(count, tokens)
        sent += count
        return _redeem_calls(vouchers[sent - count:sent], tokens, tag)

    load_before = os.getloadavg()
    with gunicorn_serving(env=env, workers=args.workers, probe_path=PROBE_PATH) as port, ProcessPoolExecutor(
        max_workers=args.concurrency
    ) as pool:
        for view in ("trivial_api", "redeem"):  # warm-up: workers' first requests, connection set-up
            warm = measure(pool, port, calls_for(view, args.concurrency * 5, "warm"), args.concurrency)
            handed_over += warm["ok"] if view == "redeem" else 0
        for round_ in range(args.rounds):
            order = ("trivial_api", "redeem") if round_ % 2 == 0 else ("redeem", "trivial_api")
            for view in order:
                calls = calls_for(view, args.requests, f"r{round_}")
                samples[view].append(measure(pool, port, calls, args.concurrency))
        handed_over += sum(sample["ok"] for sample in samples["redeem"])
    load_after = os.getloadavg()
    verification = _verify(vouchers, sent, handed_over)
    connections.close_all()

    views = {
        view: {
            **summary(samples[view]),
            "rounds_rps": [round(s["ok"] / s["seconds"], 1) for s in samples[view]],
            "path": TRIVIAL_PATH if view == "trivial_api" else "/api/v1/pickups/{code}/redeem/",
        }
        for view in samples
    }
    ratio = views["redeem"]["rps"] / views["trivial_api"]["rps"] if views["trivial_api"]["rps"] else 0.0
    # Each round's pair ran back to back: their ratio shows how much the machine's drift moved the figure.
    rounds_ratio = [round(r / t, 3) if t else 0.0 for r, t in
                    zip(views["redeem"]["rounds_rps"], views["trivial_api"]["rounds_rps"], strict=True)]
    queries = in_process["redeem_steady"]["queries"]
    return {
        "database": vendor, "database_version": version, "conn_max_age": args.conn_max_age, "cache": cache,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "views": views, "ratio": round(ratio, 3), "rounds_ratio": rounds_ratio,
        "queries_per_redeem": queries,
        "queries_in_process": in_process, "verification": verification,
        "meets_ratio_goal": ratio >= GOAL_RATIO, "meets_queries_goal": queries <= GOAL_QUERIES,
        "meets_goal": ratio >= GOAL_RATIO and queries <= GOAL_QUERIES and verification["ok"],
    }


# --------------------------------------------------------------------------- orchestration


def _child_command(args: argparse.Namespace, database_url: str) -> list[str]:
    return [
        sys.executable, "-m", "tests.bench.bench_redeem", "--child", "--database-url", database_url,
        "--requests", str(args.requests), "--rounds", str(args.rounds), "--concurrency", str(args.concurrency),
        "--workers", str(args.workers), "--conn-max-age", str(args.conn_max_age),
    ]


def _table(runs: list[dict]) -> str:
    header = (f"{'database':<12}{'view':<13}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'queries/req':>13}{'errors':>8}")
    lines = [header, "-" * len(header)]
    for run in runs:
        for view in ("trivial_api", "redeem"):
            v = run["views"][view]
            served = v.get("server_queries", {})
            counted = f"{served['min']}" if served.get("min") == served.get("max") else (
                f"{served.get('min')}-{served.get('max')}")
            lines.append(
                f"{run['database']:<12}{view:<13}{v['rps']:>9.1f}{v['p50_ms']:>9.2f}{v['p95_ms']:>9.2f}"
                f"{v['p99_ms']:>9.2f}{counted:>13}{v['errors']:>8}"
            )
        db = run["database"]
        steady = run["queries_in_process"]["redeem_steady"]
        lines.append(f"{db:<12}redeem/trivial = {run['ratio']:.2f} "
                     f"({'meets' if run['meets_ratio_goal'] else 'BELOW'} the goal of {GOAL_RATIO}); "
                     f"round by round {' '.join(f'{r:.2f}' for r in run['rounds_ratio'])}")
        lines.append(
            f"{db:<12}queries per redeem = {run['queries_per_redeem']} "
            f"({'meets' if run['meets_queries_goal'] else 'ABOVE'} the goal of {GOAL_QUERIES}); "
            f"plus {steady['transaction_control']} BEGIN/SAVEPOINT/RELEASE and {steady['transactions_committed']} "
            f"COMMIT: {steady['round_trips']} round trips to the database"
        )
        check = run["verification"]
        verdict = "verified" if check["ok"] else (
            "NOT ALL HANDED OVER" if check["exactly_once"] else "NOT EXACTLY ONCE")
        lines.append(
            f"{db:<12}{verdict}: {check['vouchers_sent']} vouchers sent, {check['answered_200']} answered 200, "
            f"{check['orders_redeemed_exactly_once']} orders redeemed exactly once "
            f"({check['orders_redeemed_more_than_once']} more than once), {check['redemptions']} redemptions, "
            f"{check['picked_up_events']} picked-up events, spares still paid {check['spare_vouchers_still_paid']}"
        )
        lines.append(f"{db:<12}load average {run['load_average_before']} before, {run['load_average_after']} after")
        lines.append(f"{db:<12}statements of one redeem (in-process, steady):")
        for n, statement in enumerate(steady["statements"], 1):
            lines.append(f"{'':<14}{n:>2}. {statement['summary']:<60} {statement['issued_by']}")
        lines.append("")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_redeem", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["auto", "sqlite", "postgres"], default="auto",
                        help="auto: SQLite, plus PostgreSQL when DATABASE_URL points at one")
    parser.add_argument("--requests", type=int, default=600, help="requests per view per round (default 600)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="client processes (default 16)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (default: CPUs)")
    parser.add_argument("--conn-max-age", type=int, default=60,
                        help="DB_CONN_MAX_AGE for the server: persistent connections, as deployed (default 60)")
    parser.add_argument("--output", default=str(BASE_DIR / "bench-results" / "redeem.json"))
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a goal is missed or the database does not show exactly-once redemptions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args)))
        return 0

    runs = []
    for kind in databases_for(args.db):
        with throwaway_database(kind) as (url, folder):
            (folder / "static").mkdir(exist_ok=True)
            env = {**os.environ, "O2O_VAR_DIR": str(folder), "PYTHONPATH": str(BASE_DIR)}
            print(f"[bench] {kind}: migrating, seeding {_orders_needed(args)} paid vouchers, serving with "
                  f"{args.workers} gunicorn workers...", flush=True)
            done = subprocess.run(_child_command(args, url), cwd=BASE_DIR, env=env, capture_output=True, text=True)
            if done.returncode:
                sys.stderr.write(done.stdout + done.stderr)
                return done.returncode
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print("\n" + _table(runs[-1:]), flush=True)  # now: a later database that fails must not lose this one

    report = {
        "benchmark": "pickup redeem (POS API) vs trivial authenticated DRF view, through gunicorn on loopback",
        "goal_ratio": GOAL_RATIO,
        "goal_queries_per_redeem": GOAL_QUERIES,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "config": {"requests_per_round": args.requests, "rounds": args.rounds, "concurrency": args.concurrency,
                   "gunicorn_workers": args.workers, "conn_max_age": args.conn_max_age},
        "runs": runs,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {output}")
    if args.strict and not all(run["meets_goal"] for run in runs):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
