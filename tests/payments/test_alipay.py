"""Alipay: RSA2 notifications verified field by field, signed gateway calls, answers verified.

Keys are generated in the test session; the notification is the one of Alipay's documentation,
signed here with the test "alipay" key. Every call goes through a fake transport: no network.
"""

import base64
import json
import urllib.parse
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from o2o.money import MoneyError
from orders.payments.providers.alipay import (
    GATEWAY,
    AlipayProvider,
    notification_sign_content,
    raw_members,
    sign_content,
)
from orders.payments.providers.base import NotificationIgnored, NotificationRejected, ProviderError

from . import vectors as v

SHANGHAI = ZoneInfo("Asia/Shanghai")


def provider(**config) -> AlipayProvider:
    return AlipayProvider(v.alipay_config(**config), transport=_no_network, clock=lambda: v.NOW)


def _no_network(url, data):
    raise AssertionError("this test must not call the gateway")


def doc_body(**changes) -> bytes:
    fields = v.alipay_doc_notification()
    fields.update(changes)
    return v.alipay_form(v.alipay_signed(fields))


# --------------------------------------------------------------------------- the documented notification


def test_sign_content_is_the_documented_string_to_sign():
    assert notification_sign_content(v.alipay_doc_notification()) == v.ALIPAY_DOC_SIGN_CONTENT


def test_sign_content_leaves_out_empty_values_sign_and_sign_type():
    fields = {"b": "2", "a": "1", "empty": "", "sign": "x", "sign_type": "RSA2"}
    assert notification_sign_content(fields) == "a=1&b=2"
    assert sign_content(fields) == "a=1&b=2&sign_type=RSA2"  # requests sign sign_type too


def test_documented_notification_verifies_and_reads_as_paid():
    notification = provider().verify_notification(body=doc_body(), headers={})

    assert notification.out_trade_no == "0719141034-6418"
    assert notification.provider_trade_no == "2016071921001003030200089909"
    assert notification.amount_minor == 200
    assert notification.currency == "CNY"
    assert notification.paid is True
    assert notification.state == "TRADE_SUCCESS"
    assert notification.paid_at == datetime(2016, 7, 19, 14, 10, 47, tzinfo=SHANGHAI)


@pytest.mark.parametrize("state", ["TRADE_SUCCESS", "TRADE_FINISHED"])
def test_trade_success_and_finished_say_the_money_is_ours(state):
    notification = provider().verify_notification(body=doc_body(trade_status=state), headers={})
    assert (notification.paid, notification.state) == (True, state)


@pytest.mark.parametrize("state", ["WAIT_BUYER_PAY", "TRADE_CLOSED"])
def test_a_genuine_notification_of_an_unpaid_trade_is_ignored_not_rejected(state):
    with pytest.raises(NotificationIgnored) as ignored:
        provider().verify_notification(body=doc_body(trade_status=state), headers={})
    assert (ignored.value.report.paid, ignored.value.report.state) == (False, state)
    assert ignored.value.report.out_trade_no == "0719141034-6418"
    # forged, it is still rejected first
    with pytest.raises(NotificationRejected):
        provider().verify_notification(body=doc_body(trade_status=state).replace(b"2.00", b"3.00"), headers={})


@pytest.mark.django_db
def test_the_notify_url_answers_success_to_wait_buyer_pay_and_changes_nothing(client):
    from orders.payments.models import PaymentNotification
    from tests.payments.sandbox_world import placed_order, sandbox_shop

    shop = sandbox_shop("alipayshop")
    config = v.alipay_config(merchant=shop.merchant)
    config.save()
    order = placed_order(shop)
    payment = order.payments.create(merchant=shop.merchant, provider="alipay", out_trade_no="0719141034-6418",
                                    amount=Decimal("2.00"), currency="CNY")  # fmt: skip
    response = client.post(
        f"/api/v1/payments/notify/alipay/{shop.merchant.slug}/", data=doc_body(trade_status="WAIT_BUYER_PAY"),
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    assert (response.status_code, response.content) == (200, b"success")  # Alipay stops sending it
    note = PaymentNotification.objects.get()
    assert (note.status, note.out_trade_no, note.payment) == ("ignored", "0719141034-6418", None)
    assert "WAIT_BUYER_PAY" in note.error
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, order.status) == ("created", "pending_payment")


def test_a_notification_in_gbk_verifies_over_its_gbk_bytes():
    fields = {**v.alipay_doc_notification(), "charset": "gbk"}
    body = v.alipay_form(v.alipay_signed(fields, charset="gbk"), charset="gbk")
    assert provider().verify_notification(body=body, headers={}).amount_minor == 200


def test_without_seller_id_configured_any_seller_is_accepted():
    assert provider(merchant_no="").verify_notification(body=doc_body(seller_id="2088000000000001"), headers={})


def test_notify_answers_are_what_alipay_expects():
    assert (provider().notify_answer(accepted=True).status, provider().notify_answer(accepted=True).body) == (
        200,
        "success",
    )
    assert provider().notify_answer(accepted=False).body == "fail"


# --------------------------------------------------------------------------- tampering


def rejected(body: bytes, **config) -> str:
    with pytest.raises(NotificationRejected) as caught:
        provider(**config).verify_notification(body=body, headers={})
    return caught.value.message


SIGNED_FIELDS = sorted(v.alipay_doc_notification())
field_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(SIGNED_FIELDS), value=field_values)
@example(field="total_amount", value="200.00")
@example(field="out_trade_no", value="0719141034-6419")
@example(field="refund_fee", value="")
def test_any_change_of_a_signed_field_is_rejected(field, value):
    signed = v.alipay_signed(v.alipay_doc_notification())
    if signed[field] == value:
        value += "x"
    signed[field] = value
    assert rejected(v.alipay_form(signed))


@settings(deadline=None, max_examples=50)
@given(name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True), value=st.text(min_size=1, max_size=10).filter(str.strip))
def test_a_field_added_after_signing_is_rejected(name, value):
    signed = v.alipay_signed(v.alipay_doc_notification())
    if name in signed:
        return
    signed[name] = value
    assert rejected(v.alipay_form(signed))


def test_a_flipped_signature_byte_is_rejected():
    signed = v.alipay_signed(v.alipay_doc_notification())
    raw = bytearray(base64.b64decode(signed["sign"]))
    raw[17] ^= 0x01
    signed["sign"] = base64.b64encode(bytes(raw)).decode()
    assert "does not verify" in rejected(v.alipay_form(signed))


def test_signed_with_another_key_is_rejected():
    body = v.alipay_form(v.alipay_signed(v.alipay_doc_notification(), label="intruder"))
    assert "does not verify" in rejected(body)


def test_missing_sign_or_other_sign_type_is_rejected():
    fields = v.alipay_doc_notification()
    assert "no sign" in rejected(v.alipay_form(fields))
    assert "RSA2" in rejected(v.alipay_form({**v.alipay_signed(fields), "sign_type": "RSA"}))


def test_a_field_given_twice_is_rejected():
    body = doc_body() + b"&total_amount=0.01"
    assert "twice" in rejected(body)


def test_wrong_app_id_is_rejected_naming_it():
    assert "app_id" in rejected(doc_body(app_id="2015102700040999"))


def test_wrong_or_missing_seller_id_is_rejected_naming_it():
    assert "seller_id" in rejected(doc_body(seller_id="2088102119685839"))
    assert "seller_id" in rejected(doc_body(seller_id=""))


def test_a_merchant_without_the_alipay_public_key_rejects_everything():
    assert "public key" in rejected(doc_body(), provider_public_keys={})


@pytest.mark.parametrize(
    "amount", ["2.001", "-2.00", "+2.00", "1e3", "2,00", " 2.00", "NaN", "Infinity", "0x10", "２.00"]
)
def test_a_malformed_amount_is_rejected_even_when_signed(amount):
    assert "total_amount" in rejected(doc_body(total_amount=amount))


@pytest.mark.parametrize(
    ("field", "value"),
    [("trade_status", "TRADE_PENDING"), ("out_trade_no", ""), ("trade_no", ""), ("gmt_payment", "yesterday")],
)
def test_signed_but_malformed_fields_are_rejected_naming_them(field, value):
    assert field in rejected(doc_body(**{field: value}))


@settings(max_examples=200)
@given(body=st.binary(max_size=300))
def test_any_body_is_either_verified_or_rejected(body):
    with pytest.raises(NotificationRejected):
        provider().verify_notification(body=body, headers={})


# --------------------------------------------------------------------------- checkout


def test_checkout_is_a_signed_wap_pay_url_that_alipay_can_verify():
    checkout = provider().checkout(
        v.payment(out_trade_no="P20260301001", amount="19.90"),
        notify_url="https://shop.example/api/v1/payments/notify/alipay/demo/",
        return_url="https://shop.example/o/abc",
    )

    assert checkout.url.startswith(GATEWAY + "?")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(checkout.url).query))
    assert params["method"] == "alipay.trade.wap.pay"
    assert params["app_id"] == v.ALIPAY_APP_ID
    assert params["sign_type"] == "RSA2"
    assert params["notify_url"] == "https://shop.example/api/v1/payments/notify/alipay/demo/"
    assert params["timestamp"] == "2026-02-02 10:40:00"  # v.NOW in Beijing time
    biz = json.loads(params["biz_content"])
    assert biz == {
        "out_trade_no": "P20260301001",
        "total_amount": "19.90",
        "subject": "Order P20260301001",
        "product_code": "QUICK_WAP_WAY",
        "quit_url": "https://shop.example/o/abc",
    }
    # What Alipay's gateway does: every parameter but sign, sorted, verified with the app's public key.
    content = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "sign" and params[key])
    assert v.rsa_verify(content.encode(), params["sign"], "merchant")


def test_checkout_refuses_amounts_finer_than_a_fen_and_other_currencies():
    with pytest.raises(MoneyError, match="decimal places"):
        provider().checkout(v.payment(amount="1.001"), notify_url="https://n", return_url="https://r")
    with pytest.raises(ProviderError, match="CNY"):
        provider().checkout(v.payment(currency="HKD"), notify_url="https://n", return_url="https://r")


# --------------------------------------------------------------------------- query and refund


class FakeGateway:
    """Answers one method with a canned body and keeps what was sent."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.sent: list[dict[str, str]] = []
        self.downloads: dict[str, bytes] = {}

    def __call__(self, url, data):
        if data is None:  # the bill download: a plain GET of the URL Alipay signed
            return self.downloads[url]
        assert url.startswith(GATEWAY)
        self.sent.append(dict(urllib.parse.parse_qsl(data.decode())))
        return self.answer


def with_gateway(answer: bytes) -> tuple[AlipayProvider, FakeGateway]:
    gateway = FakeGateway(answer)
    return AlipayProvider(v.alipay_config(), transport=gateway, clock=lambda: v.NOW), gateway


QUERY_OK = {
    "code": "10000",
    "msg": "Success",
    "trade_no": "2017032121001004070200176844",
    "out_trade_no": "0719141034-6418",
    "buyer_logon_id": "csq***@sandbox.com",
    "trade_status": "TRADE_SUCCESS",
    "total_amount": "2.00",
    "receipt_amount": "2.00",
    "send_pay_date": "2017-03-21 13:29:17",
}


@pytest.mark.parametrize("spacing", ["", " "])
def test_query_reads_a_signed_answer_as_written(spacing):
    alipay, gateway = with_gateway(v.alipay_answer("alipay.trade.query", QUERY_OK, spacing=spacing))

    notification = alipay.query(v.payment())

    assert notification.paid is True
    assert notification.amount_minor == 200
    assert notification.provider_trade_no == "2017032121001004070200176844"
    assert notification.paid_at == datetime(2017, 3, 21, 13, 29, 17, tzinfo=SHANGHAI)
    sent = gateway.sent[0]
    assert sent["method"] == "alipay.trade.query"
    assert json.loads(sent["biz_content"]) == {"out_trade_no": "0719141034-6418"}
    assert v.rsa_verify(sign_content(sent).encode(), sent["sign"], "merchant")


def test_query_of_an_unknown_trade_is_none():
    node = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
    alipay, _ = with_gateway(v.alipay_answer("alipay.trade.query", node))
    assert alipay.query(v.payment()) is None


@pytest.mark.parametrize(
    "answer",
    [
        v.alipay_answer("alipay.trade.query", QUERY_OK, label="intruder"),
        v.alipay_answer("alipay.trade.query", QUERY_OK).replace(b'"2.00"', b'"200.00"', 1),
        json.dumps({"alipay_trade_query_response": QUERY_OK}).encode(),
        b"<html>502 Bad Gateway</html>",
        v.alipay_answer("alipay.trade.query", {**QUERY_OK, "out_trade_no": "someone-else"}),
        v.alipay_answer("alipay.trade.query", {**QUERY_OK, "total_amount": "2.0.0"}),
    ],
    ids=["wrong-key", "tampered", "unsigned", "not-json", "other-trade", "bad-amount"],
)
def test_query_refuses_answers_it_cannot_trust(answer):
    alipay, _ = with_gateway(answer)
    with pytest.raises(ProviderError):
        alipay.query(v.payment())


def test_an_unreachable_gateway_is_a_provider_error():
    def down(url, data):
        raise OSError("connection refused")

    with pytest.raises(ProviderError, match="could not be reached"):
        AlipayProvider(v.alipay_config(), transport=down).query(v.payment())


def test_refund_sends_our_refund_number_and_reads_success():
    node = {"code": "10000", "msg": "Success", "trade_no": "2016071921001003030200089909", "fund_change": "Y"}
    alipay, gateway = with_gateway(v.alipay_answer("alipay.trade.refund", node))

    result = alipay.refund(v.refund(out_refund_no="R1", amount="1.00"))

    assert (result.succeeded, result.provider_refund_no) == (True, "2016071921001003030200089909")
    assert json.loads(gateway.sent[0]["biz_content"]) == {
        "out_trade_no": "0719141034-6418",
        "refund_amount": "1.00",
        "out_request_no": "R1",
        "refund_reason": "customer changed their mind",
    }


def test_refund_refused_by_alipay_is_a_failure_with_its_reason():
    node = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH",
        "sub_msg": "余额不足",
    }
    alipay, _ = with_gateway(v.alipay_answer("alipay.trade.refund", node))
    result = alipay.refund(v.refund())
    assert result.succeeded is False
    assert "ACQ.SELLER_BALANCE_NOT_ENOUGH" in result.failure


def test_refund_with_an_unknown_outcome_is_a_provider_error_to_ask_again():
    node = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "aop.ACQ.SYSTEM_ERROR"}
    alipay, _ = with_gateway(v.alipay_answer("alipay.trade.refund", node))
    with pytest.raises(ProviderError, match="ask again"):
        alipay.refund(v.refund())


def test_raw_members_keep_the_exact_text_that_was_signed():
    text = '{"a_response" : {"x": "1",  "y":[1, 2]} , "sign":"abc"}'
    assert raw_members(text) == {"a_response": '{"x": "1",  "y":[1, 2]}', "sign": '"abc"'}
    with pytest.raises(ValueError, match="twice"):
        raw_members('{"a":1,"a":2}')


def test_the_bill_download_url_comes_from_a_verified_answer():
    node = {
        "code": "10000",
        "msg": "Success",
        "bill_download_url": "http://dwbillcenter.alipay.com/downloadBillFile.resource?x=1",
    }
    alipay, gateway = with_gateway(v.alipay_answer("alipay.data.dataservice.bill.downloadurl.query", node))

    gateway.downloads[node["bill_download_url"]] = v.alipay_bill_zip(v.bill_entries(3))

    lines = list(alipay.parse_statement(alipay.download_statement(date(2026, 3, 1))))

    assert len(lines) == 3
    assert json.loads(gateway.sent[0]["biz_content"]) == {"bill_type": "trade", "bill_date": "2026-03-01"}
