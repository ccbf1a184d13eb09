"""The sandbox's daily statement: WeChat Pay's trade bill format, read back line by line by the WeChat
Pay provider's reader (the one trade-bill reader there is)."""

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order
from orders.payments.models import SandboxTrade
from orders.payments.providers.base import StatementError
from orders.payments.providers.sandbox import (
    BILL_COLUMNS,
    STATEMENT_TZ,
    SandboxProvider,
    sandbox_statement,
    sandbox_trade_pay,
)
from orders.payments.providers.wechatpay import tradebill_lines
from orders.payments.services import payment_query, refund_create
from tests.payments.sandbox_world import placed_order, sandbox_shop, sandbox_trade, started_payment


@pytest.fixture
def shop(db):
    return sandbox_shop("teahouse")


def today():
    return timezone.now().astimezone(STATEMENT_TZ).date()


def paid(shop, quantity: int = 1) -> Order:
    order = placed_order(shop, quantity=quantity, phone=f"139 {Order.objects.count():04d} 0000")
    payment = started_payment(order)
    sandbox_trade_pay(trade=sandbox_trade(payment), deliveries=0)
    payment_query(payment=payment)
    return order


def parse(data: bytes) -> list:
    return list(tradebill_lines(io.BytesIO(data)))


def test_the_statement_lists_the_days_payments_and_refunds_as_a_wechat_trade_bill(shop):
    # Given two payments today (99.00 and 297.00) and a partial refund of the second
    first, second = paid(shop), paid(shop, quantity=3)
    refund = refund_create(order=second, amount=Decimal("50.00"), reason="dented", requested_by=None)
    paid(sandbox_shop("rival"))  # another merchant's trade is not on our statement
    # When the sandbox writes today's statement
    text = sandbox_statement(shop.merchant, today()).decode("utf-8")
    rows = text.strip().split("\r\n")
    # Then: the header, one backticked row per payment and refund, then the summary header and line
    assert rows[0].split(",") == BILL_COLUMNS and len(rows) == 6
    assert all(row.startswith("`") for row in rows[1:4])
    assert rows[4].startswith("总交易单数,")
    assert rows[5] == "`3,`396.00,`50.00,`0.00,`2.07000,`396.00,`50.00"
    lines = parse(text.encode())
    assert [(line.kind, line.out_trade_no, line.amount_minor, line.fee_minor) for line in lines] == [
        ("trade", first.payments.get().out_trade_no, 9900, 59),
        ("trade", second.payments.get().out_trade_no, 29700, 178),
        # the bill writes the refund's fee negative (handed back); lines carry it positive, kind "refund"
        ("refund", second.payments.get().out_trade_no, 5000, 30),
    ]
    assert lines[2].out_refund_no == refund.out_refund_no
    assert lines[0].provider_trade_no == first.payments.get().provider_trade_no
    assert all(line.currency == "CNY" and line.occurred_at.tzinfo is not None for line in lines)


def test_a_day_without_business_has_an_empty_statement_that_still_reads(shop):
    paid(shop)
    lines = parse(sandbox_statement(shop.merchant, today() - timedelta(days=1)))
    assert lines == []


def test_the_statement_day_is_cut_at_beijing_midnight(shop):
    order = paid(shop)
    trade = SandboxTrade.objects.get(out_trade_no=order.payments.get().out_trade_no)
    midnight = datetime.combine(today(), datetime.min.time(), tzinfo=STATEMENT_TZ)
    SandboxTrade.objects.filter(pk=trade.pk).update(paid_at=midnight - timedelta(seconds=1))
    assert len(parse(sandbox_statement(shop.merchant, today() - timedelta(days=1)))) == 1
    assert parse(sandbox_statement(shop.merchant, today())) == []


def test_the_sandbox_provider_reads_its_statement_with_the_wechat_pay_reader_checking_its_account(shop):
    paid(shop)
    data = sandbox_statement(shop.merchant, today())
    provider = SandboxProvider(shop.config)
    assert [line.amount_minor for line in provider.parse_statement(io.BytesIO(data))] == [9900]
    # the bill of another sandbox account is refused, naming the row
    other = data.replace(b"`sandbox-teahouse,", b"`sandbox-rival,")
    with pytest.raises(StatementError, match="商户号 'sandbox-rival' is not this merchant's") as refused:
        list(provider.parse_statement(io.BytesIO(other)))
    assert refused.value.line_no == 2


HEADER_24 = ",".join([
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
    "交易状态", "付款银行", "货币种类", "总金额", "企业红包金额", "微信退款单号", "商户退款单号", "退款金额",
    "企业红包退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率",
])  # fmt: skip
SUMMARY_24 = ",".join(["总交易单数", "总交易额", "总退款金额", "总企业红包退款金额", "手续费总金额"])


def bill(*rows: str, header: str = HEADER_24, summary: str = "`2,`10.00,`3.00,`0.00,`0.05000") -> bytes:
    return "\r\n".join([header, *rows, SUMMARY_24, summary, ""]).encode()


TRADE_24 = ("`2026-03-01 10:00:00,`wx1,`1900000001,`0,`,`4200000001,`T1,`openid,`JSAPI,`SUCCESS,`OTHERS,`CNY,`10.00,"
            "`0.00,`0,`0,`0.00,`0.00,`,`,`tea,`,`0.06000,`0.60%")
REFUND_24 = ("`2026-03-01 11:00:00,`wx1,`1900000001,`0,`,`4200000001,`T1,`openid,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,"
             "`0.00,`5030000001,`R1,`3.00,`0.00,`ORIGINAL,`SUCCESS,`tea,`,`-0.01000,`0.60%")


def test_the_older_24_column_layout_reads_by_header_names():
    lines = parse(bill(TRADE_24, REFUND_24))
    assert [(x.kind, x.amount_minor, x.fee_minor, x.out_refund_no) for x in lines] == [
        ("trade", 1000, 6, ""), ("refund", 300, 1, "R1"),
    ]
    assert lines[0].occurred_at == datetime(2026, 3, 1, 10, tzinfo=STATEMENT_TZ)


@pytest.mark.parametrize(
    ("data", "line_no", "message"),
    [
        (bill(TRADE_24.replace("`10.00", "`10.001"), REFUND_24), 2, "'10.001' has more than 2 decimal places"),
        (bill(TRADE_24.replace("`10.00", "`ten"), REFUND_24), 2, "'ten' is not an amount"),
        (bill(TRADE_24, REFUND_24.replace("`REFUND", "`MAYBE")), 3,
         "交易状态 'MAYBE' is not SUCCESS, REFUND or REVOKED"),
        (bill(TRADE_24, REFUND_24.replace("`2026-03-01 11:00:00", "`yesterday")), 3,
         "交易时间 'yesterday' is not a time"),
        (bill(TRADE_24, REFUND_24 + ",`extra"), 3, "the row has 25 cells; the header has 24"),
        (bill(TRADE_24, REFUND_24, summary="`3,`10.00,`3.00,`0.00,`0.05000"), 5, "says 3 rows .* the bill has 2"),
        (bill(TRADE_24, REFUND_24, summary="`2,`10.01,`3.00,`0.00,`0.05000"), 5,
         "总交易额 10.01 but the rows add up to 10.00"),
        (bill(TRADE_24, REFUND_24, summary="`2,`10.00,`3.00,`0.00,`0.07000"), 5,
         "手续费总金额 0.07000 but the rows add up to 0.05000"),
        ("\r\n".join([HEADER_24, TRADE_24]).encode(), 2, "the summary line is missing"),
        (bill(TRADE_24, REFUND_24) + b"`trailing,`junk\r\n", 6, "text after the summary line"),
        (HEADER_24.replace("商户订单号", "订单").encode(), 1, "no column 商户订单号"),
        (b"", 1, "the trade bill is empty"),
    ],
)
def test_a_malformed_statement_is_refused_naming_the_line(data, line_no, message):
    with pytest.raises(StatementError, match=message) as refused:
        parse(data)
    assert refused.value.line_no == line_no


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantities=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4),
       refund_fen=st.integers(min_value=1, max_value=9900))
def test_the_statement_adds_up_to_the_ledger_to_the_fen(shop, quantities, refund_fen):
    SandboxTrade.objects.all().delete()
    orders = [paid(shop, quantity=q) for q in quantities]
    refund_create(order=orders[0], amount=Decimal(refund_fen).scaleb(-2), reason="r", requested_by=None)
    lines = parse(sandbox_statement(shop.merchant, today()))
    assert sum(x.amount_minor for x in lines if x.kind == "trade") == 9900 * sum(quantities)
    assert [x.amount_minor for x in lines if x.kind == "refund"] == [refund_fen]
