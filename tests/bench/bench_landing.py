"""Landing page throughput through the whole WSGI stack, against a trivial Django view in the same run.

    .venv/bin/python -m tests.bench.bench_landing                 # SQLite, and PostgreSQL if DATABASE_URL is one
    .venv/bin/python -m tests.bench.bench_landing --db sqlite --requests 1000 --concurrency 8

For each database: a throwaway database (a temporary SQLite file; a `<name>_bench` database on the PostgreSQL
server DATABASE_URL names), migrated and seeded with a busy merchant; gunicorn serves the project on loopback
(with a bench-only urlconf that adds the trivial view, see tests/bench/settings.py); a pool of client processes
sends a bounded number of requests to each page, in interleaved rounds so that drift on the machine hits both
pages alike. Every landing request is a real scan (one INSERT), as in a store.

Prints a table and writes bench-results/landing.json. Not a test: it never fails on numbers unless --strict.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.common import (
    BASE_DIR,
    Call,
    database_version,
    databases_for,
    gunicorn_serving,
    measure,
    summary,
    throwaway_database,
)

GOAL_RATIO = 0.5


# --------------------------------------------------------------------------- one database (runs in a child process)


def _seed() -> dict:
    """A busy merchant: many promotions, thousands of scans, hundreds of orders; one bundle to benchmark."""
    from orders.models import Scan
    from orders.services import order_mark_paid, order_place
    from tests.factories import MerchantFactory, ProductFactory, StoreFactory, promotion

    merchant = MerchantFactory(slug="bench", name="Bench Department Store")
    stores = [
        StoreFactory(merchant=merchant, name=f"Bench store {i}", code=f"bench-{i}",
                     pickup_instructions="B1 pickup counter, window 3.")
        for i in range(3)
    ]
    products = [ProductFactory(merchant=merchant, name=f"Bench product {i}", sku=f"BENCH-{i}") for i in range(3)]
    promo = promotion(
        merchant, products=[(p, 1 + i) for i, p in enumerate(products)], stores=stores, stock_cap=10_000_000,
        per_member_limit=5, allow_express=True, title="Longjing tea gift set", description="Spring harvest, 3 tins.",
    )
    for i in range(30):
        promotion(merchant, stores=stores[:1], title=f"Other offer {i}")
    Scan.objects.bulk_create(
        [Scan(merchant=merchant, promotion=promo, store=stores[i % 3]) for i in range(5000)], batch_size=500
    )
    for i in range(300):
        order = order_place(
            promotion=promo, quantity=1, phone=f"1380013{i:04d}", fulfilment="pickup", submit_key=f"seed-{i}",
            pickup_store=stores[i % 3],
        )
        if i % 3:
            order_mark_paid(order=order)
    return {"landing": f"/p/{promo.wall_code}?s={stores[0].code}", "trivial": "/bench/trivial"}


def _queries_per_request(paths: dict) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts = {}
    for page, path in paths.items():
        for visit in ("first", "steady"):  # the first visit renders the landing page; later ones reuse it
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{page} {path} answered {response.status_code}")
            counts[page, visit] = len(captured.captured_queries)
    return counts


def run_one(args: argparse.Namespace) -> dict:
    """Set up one database, serve it, measure. Django is configured here, once per child process."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.bench.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DB_CONN_MAX_AGE"] = str(args.conn_max_age)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    call_command("migrate", verbosity=0, interactive=False)
    paths = _seed()
    queries = _queries_per_request(paths)
    vendor, version = connection.vendor, database_version(connection)
    connections.close_all()

    env = {**os.environ, "PYTHONPATH": str(BASE_DIR)}
    samples: dict[str, list[dict]] = {"trivial": [], "landing": []}
    with gunicorn_serving(env=env, workers=args.workers, probe_path=paths["trivial"]) as port, ProcessPoolExecutor(
        max_workers=args.concurrency
    ) as pool:
        for page in ("trivial", "landing"):  # warm-up: workers' first requests, connection set-up
            measure(pool, port, [Call("GET", paths[page])] * (args.concurrency * 5), args.concurrency)
        for round_ in range(args.rounds):
            order = ("trivial", "landing") if round_ % 2 == 0 else ("landing", "trivial")
            for page in order:
                samples[page].append(measure(pool, port, [Call("GET", paths[page])] * args.requests, args.concurrency))

    pages = {
        page: {
            **summary(samples[page]), "queries_per_request": queries[page, "steady"],
            "queries_first_visit": queries[page, "first"], "path": paths[page],
        }
        for page in samples
    }
    ratio = pages["landing"]["rps"] / pages["trivial"]["rps"] if pages["trivial"]["rps"] else 0.0
    return {"database": vendor, "database_version": version, "conn_max_age": args.conn_max_age,
            "pages": pages, "ratio": round(ratio, 3), "meets_goal": ratio >= GOAL_RATIO}


# --------------------------------------------------------------------------- orchestration


def _child_command(args: argparse.Namespace, database_url: str) -> list[str]:
    return [
        sys.executable, "-m", "tests.bench.bench_landing", "--child", "--database-url", database_url,
        "--requests", str(args.requests), "--rounds", str(args.rounds), "--concurrency", str(args.concurrency),
        "--workers", str(args.workers), "--conn-max-age", str(args.conn_max_age),
    ]


def _table(runs: list[dict]) -> str:
    header = f"{'database':<12}{'page':<9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'queries/req':>13}{'errors':>8}"
    lines = [header, "-" * len(header)]
    for run in runs:
        for page in ("trivial", "landing"):
            p = run["pages"][page]
            lines.append(
                f"{run['database']:<12}{page:<9}{p['rps']:>9.1f}{p['p50_ms']:>9.2f}{p['p95_ms']:>9.2f}"
                f"{p['queries_per_request']:>13}{p['errors']:>8}"
            )
        verdict = "meets" if run["meets_goal"] else "BELOW"
        lines.append(f"{run['database']:<12}landing/trivial = {run['ratio']:.2f} ({verdict} the goal of {GOAL_RATIO})")
        lines.append("")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_landing", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["auto", "sqlite", "postgres"], default="auto",
                        help="auto: SQLite, plus PostgreSQL when DATABASE_URL points at one")
    parser.add_argument("--requests", type=int, default=600, help="requests per page per round (default 600)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="client processes (default 8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (default: CPUs)")
    parser.add_argument("--conn-max-age", type=int, default=60,
                        help="DB_CONN_MAX_AGE for the server: persistent connections, as deployed (default 60)")
    parser.add_argument("--output", default=str(BASE_DIR / "bench-results" / "landing.json"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a ratio is below the goal")
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
            print(f"[bench] {kind}: migrating, seeding, serving with {args.workers} gunicorn workers...", flush=True)
            done = subprocess.run(_child_command(args, url), cwd=BASE_DIR, env=env, capture_output=True, text=True)
            if done.returncode:
                sys.stderr.write(done.stdout + done.stderr)
                return done.returncode
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))

    report = {
        "benchmark": "landing page vs trivial Django view, through gunicorn on loopback",
        "goal_ratio": GOAL_RATIO,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "config": {"requests_per_round": args.requests, "rounds": args.rounds, "concurrency": args.concurrency,
                   "gunicorn_workers": args.workers, "conn_max_age": args.conn_max_age},
        "runs": runs,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(_table(runs))
    print(f"written to {output}")
    if args.strict and not all(run["meets_goal"] for run in runs):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
