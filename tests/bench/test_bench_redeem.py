"""The redeem benchmark's own parts: its yardstick, its seed, its query counts and its exactly-once check.

The benchmark itself (bench_redeem.py) is never collected; these run with the suite on any database.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.bench import bench_redeem
from tests.bench.common import QUERIES_HEADER, is_transaction_control


@pytest.fixture
def bench_urls(settings):
    settings.ROOT_URLCONF = "tests.bench.urls"
    settings.MIDDLEWARE = ["tests.bench.query_count.query_count_header", *settings.MIDDLEWARE]


@pytest.fixture
def seeded(db, bench_urls):
    return bench_redeem._seed(orders=4, cashiers=4)


def send(call):
    headers = {k: v for k, v in call.headers.items() if k != "Content-Type"}
    if call.method == "POST":
        return Client().post(call.path, data=call.body, content_type="application/json", headers=headers)
    return Client().get(call.path, headers=headers)


def test_the_trivial_api_view_wants_a_token_and_costs_one_query(seeded):
    assert Client().get(bench_redeem.TRIVIAL_PATH).status_code == 401
    send(bench_redeem._trivial_calls(1, seeded["tokens"])[0])  # a connection's first prepares its statement
    with CaptureQueriesContext(connection) as captured:
        response = send(bench_redeem._trivial_calls(1, seeded["tokens"])[0])
    assert response.status_code == 200 and response.json()["ok"] is True
    assert len(captured.captured_queries) == 1 and response[QUERIES_HEADER] == "1"


def test_each_redeem_is_a_fresh_hand_over_and_its_response_counts_its_queries(seeded):
    vouchers = seeded["vouchers"]
    calls = bench_redeem._redeem_calls(vouchers[:2], seeded["tokens"], "test")
    assert len({call.path for call in calls}) == 2
    for call in calls:
        with CaptureQueriesContext(connection) as captured:
            response = send(call)
        assert response.status_code == 200, response.content
        work = [q["sql"] for q in captured.captured_queries if not is_transaction_control(q["sql"])]
        assert response[QUERIES_HEADER] == str(len(work))
    check = bench_redeem._verify(vouchers, 2, 2)
    assert check["ok"] and check["redemptions"] == 2 and check["spare_vouchers_still_paid"] == "2/2", check


def test_a_voucher_handed_over_twice_would_not_pass_the_check(seeded):
    vouchers = seeded["vouchers"]
    call = bench_redeem._redeem_calls(vouchers[:1], seeded["tokens"], "test")[0]
    assert send(call).status_code == 200
    assert send(call._replace(headers={**call.headers, "Idempotency-Key": "another"})).status_code == 409
    assert bench_redeem._verify(vouchers, 1, 1)["ok"]
    assert not bench_redeem._verify(vouchers, 1, 2)["exactly_once"]  # two 200s, one redemption


def test_the_in_process_count_names_who_sent_each_statement(seeded):
    seen = bench_redeem._queries_in_process(seeded["vouchers"][:2], seeded["tokens"])
    steady = seen["redeem_steady"]
    assert steady["queries"] == sum(not s["transaction_control"] for s in steady["statements"])
    # token, user and staff role: one query (o2o/auth.py), prepared on PostgreSQL
    assert "o2o/auth.py" in steady["statements"][0]["issued_by"]
    assert any("orders/pickups/services.py" in s["issued_by"] or "orders/pickups/fast.py" in s["issued_by"]
               for s in steady["statements"])
