"""WeChat Pay API v3: signed, AES-GCM encrypted notifications; signed requests; answers verified.

Keys are generated in the test session ("merchant" signs our requests, "platform" stands in for
WeChat Pay's platform key); the notification is the documented one, really encrypted with the
APIv3 key and signed. The clock is fixed at vectors.NOW; every call goes through a fake transport.
"""

import base64
import hashlib
import json
import urllib.parse
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.payments.providers.base import NotificationIgnored, NotificationRejected, ProviderError
from orders.payments.providers.wechatpay import API, HttpAnswer, WechatPayProvider

from . import vectors as v


def provider(*, clock=v.NOW, transport=None, **config) -> WechatPayProvider:
    return WechatPayProvider(v.wechat_config(**config), transport=transport, clock=lambda: clock)


def rejected(body: bytes, headers: dict, **config) -> str:
    with pytest.raises(NotificationRejected) as caught:
        provider(**config).verify_notification(body=body, headers=headers)
    return caught.value.message


def notification_with(**changes) -> tuple[bytes, dict]:
    transaction = v.wechat_doc_transaction()
    transaction.update(changes)
    return v.wechat_notification(transaction)


# --------------------------------------------------------------------------- the documented notification


def test_documented_notification_decrypts_and_reads_as_paid():
    body, headers = v.wechat_notification()

    notification = provider().verify_notification(body=body, headers=headers)

    assert notification.out_trade_no == "1217752501201407033233368018"
    assert notification.provider_trade_no == "1217752501201407033233368018"
    assert notification.amount_minor == 100
    assert notification.currency == "CNY"
    assert notification.paid is True
    assert notification.state == "SUCCESS"
    assert notification.paid_at == datetime(2018, 6, 8, 10, 34, 56, tzinfo=timezone(timedelta(hours=8)))


def test_headers_are_found_whatever_their_case_or_as_django_meta_spells_them():
    body, headers = v.wechat_notification()
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    lower = {name.lower(): value for name, value in headers.items()}
    assert provider().verify_notification(body=body, headers=meta).paid
    assert provider().verify_notification(body=body, headers=lower).paid


@pytest.mark.parametrize("state", ["NOTPAY", "CLOSED", "PAYERROR", "REFUND"])
def test_only_success_pays_any_other_state_is_ignored(state):
    body, headers = notification_with(trade_state=state)
    with pytest.raises(NotificationIgnored) as ignored:
        provider().verify_notification(body=body, headers=headers)
    assert (ignored.value.report.paid, ignored.value.report.state) == (False, state)


def test_notify_answers_are_what_v3_expects():
    accepted = provider().notify_answer(accepted=True)
    refused = provider().notify_answer(accepted=False)
    assert (accepted.status, json.loads(accepted.body)) == (200, {"code": "SUCCESS"})
    assert refused.status >= 400 and json.loads(refused.body)["code"] == "FAIL"
    assert json.loads(refused.body)["message"]


# --------------------------------------------------------------------------- signature and time


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_within_five_minutes_are_accepted(skew):
    body, headers = v.wechat_notification(timestamp=v.NOW + skew)
    assert provider().verify_notification(body=body, headers=headers).paid


@pytest.mark.parametrize(("skew", "says"), [(-301, "old"), (-86400, "old"), (301, "future"), (86400, "future")])
def test_stale_or_future_timestamps_are_rejected(skew, says):
    body, headers = v.wechat_notification(timestamp=v.NOW + skew)
    assert says in rejected(body, headers)


def test_the_signtest_probe_is_rejected():
    body, headers = v.wechat_notification()
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    assert "SIGNTEST" in rejected(body, headers)


def test_an_unknown_platform_serial_is_rejected():
    body, headers = v.wechat_notification(serial="7132D72A03E93CDDF8C03BBD1F37EEDF843C3AC3")
    assert "Wechatpay-Serial" in rejected(body, headers)


def test_signed_with_another_key_under_our_serial_is_rejected():
    body, headers = v.wechat_notification(label="intruder")
    assert "does not verify" in rejected(body, headers)


def test_the_right_key_is_chosen_by_serial_among_several():
    keys = {"OLD0000000000000000000000000000000000000": v.rsa_key_pair("intruder")[1]}
    keys[v.PLATFORM_SERIAL] = v.rsa_key_pair("platform")[1]
    body, headers = v.wechat_notification()
    assert provider(provider_public_keys=keys).verify_notification(body=body, headers=headers).paid


def test_a_flipped_signature_byte_is_rejected():
    body, headers = v.wechat_notification()
    raw = bytearray(base64.b64decode(headers["Wechatpay-Signature"]))
    raw[0] ^= 0x80
    headers["Wechatpay-Signature"] = base64.b64encode(bytes(raw)).decode()
    assert "does not verify" in rejected(body, headers)


@pytest.mark.parametrize(
    "header", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"]
)
def test_a_missing_header_is_rejected_naming_it(header):
    body, headers = v.wechat_notification()
    del headers[header]
    assert header in rejected(body, headers)


def test_a_timestamp_that_is_not_a_unix_time_is_rejected():
    body, headers = v.wechat_notification()
    headers["Wechatpay-Timestamp"] = "１７７００００００００"  # full-width digits
    assert "Unix time" in rejected(body, headers)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_change_of_the_signed_body_is_rejected(data):
    body, headers = v.wechat_notification()
    position = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = body[:position] + bytes([body[position] ^ flip]) + body[position + 1 :]
    assert rejected(changed, headers)


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.sampled_from(["Wechatpay-Timestamp", "Wechatpay-Nonce"]),
    value=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
)
def test_any_change_of_a_signed_header_is_rejected(header, value):
    body, headers = v.wechat_notification()
    if headers[header] == value:
        value += "0"
    headers[header] = value
    assert rejected(body, headers)


@settings(deadline=None, max_examples=100)
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(st.sampled_from(["Wechatpay-Timestamp", "Wechatpay-Signature", "X"]), st.text(max_size=20)),
)
def test_any_request_is_either_verified_or_rejected(body, headers):
    with pytest.raises(NotificationRejected):
        provider().verify_notification(body=body, headers=headers)


# --------------------------------------------------------------------------- the encrypted resource


def test_wrong_mchid_or_appid_is_rejected_naming_it():
    assert "mchid" in rejected(*notification_with(mchid="1900000109"))
    assert "appid" in rejected(*notification_with(appid="wx0000000000000000"))


def test_a_resource_encrypted_under_another_key_is_rejected():
    body, headers = v.wechat_notification(api_v3_key="0" * 32)
    assert "APIv3 key" in rejected(body, headers)


def test_a_merchant_with_another_apiv3_key_cannot_read_it():
    body, headers = v.wechat_notification()
    assert "APIv3 key" in rejected(body, headers, api_v3_key="b" * 32)
    assert "32 bytes" in rejected(body, headers, api_v3_key="short")


def _resigned(envelope: dict) -> tuple[bytes, dict]:
    body = json.dumps(envelope).encode()
    return body, v.wechat_signed_headers(body)


def test_a_changed_ciphertext_fails_its_gcm_tag_even_when_signed():
    body, _ = v.wechat_notification()
    envelope = json.loads(body)
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[5] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    assert "tag mismatch" in rejected(*_resigned(envelope))


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("associated_data", "refund", "tag mismatch"),
        ("nonce", "fdasflkja485", "tag mismatch"),
        ("algorithm", "AES_128_CBC", "algorithm"),
        ("original_type", "refund", "not a payment"),
        ("ciphertext", "!!not base64!!", "malformed"),
    ],
)
def test_a_changed_resource_is_rejected(field, value, says):
    body, _ = v.wechat_notification()
    envelope = json.loads(body)
    envelope["resource"][field] = value
    assert says in rejected(*_resigned(envelope))


def test_a_signed_body_that_is_not_json_is_rejected():
    body = b"not json"
    assert "not JSON" in rejected(body, v.wechat_signed_headers(body))


@pytest.mark.parametrize(
    "amount",
    [{"total": "100", "currency": "CNY"}, {"total": 100.0, "currency": "CNY"}, {"total": -1, "currency": "CNY"}],
    ids=["string", "float", "negative"],
)
def test_an_amount_that_is_not_whole_fen_is_rejected(amount):
    assert "amount.total" in rejected(*notification_with(amount=amount))


def test_true_is_not_one_fen():
    assert "amount.total" in rejected(*notification_with(amount={"total": True, "currency": "CNY"}))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"amount": {"total": 100}}, "currency"),
        ({"amount": {"total": 100, "currency": "cny"}}, "currency"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"trade_state": "PAID"}, "trade_state"),
        ({"out_trade_no": ""}, "out_trade_no"),
        ({"success_time": "yesterday"}, "success_time"),
        ({"success_time": "2018-06-08T10:34:56"}, "success_time"),  # no offset: no instant
    ],
)
def test_malformed_paid_transactions_are_rejected_naming_the_field(changes, says):
    assert says in rejected(*notification_with(**changes))


# --------------------------------------------------------------------------- requests


class FakeApi:
    """Answers each call with the next canned HttpAnswer and keeps what was sent."""

    def __init__(self, *answers: HttpAnswer):
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict, bytes | None]] = []

    def __call__(self, method, url, headers, body):
        self.sent.append((method, url, dict(headers), body))
        return self.answers.pop(0)


def authorization_verifies(method: str, url: str, headers: dict, body: bytes | None) -> bool:
    """WeChat Pay's side: the Authorization header verifies with our merchant public key."""
    scheme, _, params = headers["Authorization"].partition(" ")
    fields = dict(item.split("=", 1) for item in params.split(","))
    fields = {name: value.strip('"') for name, value in fields.items()}
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    message = f"{method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + (body or b"") + b"\n"
    return (
        scheme == "WECHATPAY2-SHA256-RSA2048"
        and fields["mchid"] == v.WECHAT_MCHID
        and fields["serial_no"] == v.MERCHANT_SERIAL
        and fields["timestamp"] == str(v.NOW)
        and v.rsa_verify(message, fields["signature"], "merchant")
    )


def checkout(api: FakeApi, **who):
    return provider(transport=api).checkout(
        v.payment(out_trade_no="P1", amount="19.90"),
        notify_url="https://shop.example/api/v1/payments/notify/wechatpay/demo/",
        return_url="https://shop.example/o/abc",
        **who,
    )


def test_h5_checkout_sends_a_signed_prepay_and_returns_the_h5_url():
    api = FakeApi(
        v.wechat_answer(200, {"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"})
    )

    result = checkout(api, client_ip="203.0.113.7")

    method, url, headers, body = api.sent[0]
    assert (method, url) == ("POST", API + "/v3/pay/transactions/h5")
    assert authorization_verifies(method, url, headers, body)
    order = json.loads(body)
    assert order["amount"] == {"total": 1990, "currency": "CNY"}
    assert (order["appid"], order["mchid"], order["out_trade_no"]) == (v.WECHAT_APPID, v.WECHAT_MCHID, "P1")
    assert order["scene_info"] == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}
    assert result.url.endswith("&redirect_url=https%3A%2F%2Fshop.example%2Fo%2Fabc")


def test_jsapi_checkout_returns_what_the_wechat_browser_needs_signed():
    api = FakeApi(v.wechat_answer(200, {"prepay_id": "wx201410272009395522657a690389285100"}))

    result = checkout(api, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")

    assert json.loads(api.sent[0][3])["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    params = result.params
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100"
    assert params["signType"] == "RSA"
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    assert v.rsa_verify(message, params["paySign"], "merchant")


def test_native_checkout_returns_a_code_url_for_a_qr():
    api = FakeApi(v.wechat_answer(200, {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}))
    assert checkout(api).qr_data == "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"


@pytest.mark.parametrize(
    "answer",
    [
        v.wechat_answer(200, {"code_url": "weixin://x"}, label="intruder"),
        v.wechat_answer(200, {"code_url": "weixin://x"}, serial="UNKNOWN"),
        v.wechat_answer(200, {"code_url": "weixin://x"}, timestamp=v.NOW - 3600),
        HttpAnswer(200, {}, b'{"code_url":"weixin://x"}'),
        HttpAnswer(503, {}, b""),
        v.wechat_answer(400, {"code": "PARAM_ERROR", "message": "参数错误"}),
    ],
    ids=["wrong-key", "unknown-serial", "stale", "unsigned", "outage", "refused"],
)
def test_checkout_refuses_answers_it_cannot_trust_or_use(answer):
    with pytest.raises(ProviderError):
        checkout(FakeApi(answer))


def test_a_tampered_answer_is_refused():
    answer = v.wechat_answer(200, {"code_url": "weixin://x"})
    tampered = HttpAnswer(answer.status, answer.headers, answer.body.replace(b"weixin://x", b"weixin://y"))
    with pytest.raises(ProviderError, match="does not verify"):
        checkout(FakeApi(tampered))


def test_query_reads_a_paid_transaction():
    transaction = {**v.wechat_doc_transaction(), "out_trade_no": "P1"}
    api = FakeApi(v.wechat_answer(200, transaction))

    notification = provider(transport=api).query(v.payment(out_trade_no="P1"))

    assert (notification.paid, notification.amount_minor, notification.out_trade_no) == (True, 100, "P1")
    method, url, headers, body = api.sent[0]
    assert (method, body) == ("GET", None)
    assert url == API + f"/v3/pay/transactions/out-trade-no/P1?mchid={v.WECHAT_MCHID}"
    assert authorization_verifies(method, url, headers, body)


def test_query_of_an_unpaid_order_without_amount_or_transaction_id():
    unpaid = {"appid": v.WECHAT_APPID, "mchid": v.WECHAT_MCHID, "out_trade_no": "P1", "trade_state": "NOTPAY"}
    notification = provider(transport=FakeApi(v.wechat_answer(200, unpaid))).query(v.payment(out_trade_no="P1"))
    assert (notification.paid, notification.state, notification.provider_trade_no) == (False, "NOTPAY", "")


def test_query_of_an_unknown_order_is_none():
    api = FakeApi(v.wechat_answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}))
    assert provider(transport=api).query(v.payment()) is None


def test_query_answer_about_another_merchant_or_order_is_refused():
    other_merchant = {**v.wechat_doc_transaction(), "out_trade_no": "P1", "mchid": "1900000109"}
    with pytest.raises(ProviderError, match="mchid"):
        provider(transport=FakeApi(v.wechat_answer(200, other_merchant))).query(v.payment(out_trade_no="P1"))
    with pytest.raises(ProviderError, match="answered about"):
        provider(transport=FakeApi(v.wechat_answer(200, v.wechat_doc_transaction()))).query(v.payment("P1"))


def refund_answer(status="SUCCESS") -> HttpAnswer:
    return v.wechat_answer(
        200,
        {"refund_id": "50000000382019052709732678859", "out_refund_no": "R0719141034-1", "status": status},
    )


def test_refund_sends_amounts_in_fen_and_reads_success():
    api = FakeApi(refund_answer())

    result = provider(transport=api).refund(v.refund(amount="1.00", of=v.payment(amount="2.00")))

    assert (result.succeeded, result.provider_refund_no) == (True, "50000000382019052709732678859")
    method, url, headers, body = api.sent[0]
    assert url == API + "/v3/refund/domestic/refunds"
    assert authorization_verifies(method, url, headers, body)
    sent = json.loads(body)
    assert sent["amount"] == {"refund": 100, "total": 200, "currency": "CNY"}
    assert (sent["out_trade_no"], sent["out_refund_no"]) == ("0719141034-6418", "R0719141034-1")


def test_a_refund_still_processing_is_pending_not_failed():
    result = provider(transport=FakeApi(refund_answer("PROCESSING"))).refund(v.refund())
    assert (result.pending, result.succeeded, result.failure) == (True, False, "")
    assert result.provider_refund_no == "50000000382019052709732678859"


def test_a_closed_or_refused_refund_failed_with_its_reason():
    assert provider(transport=FakeApi(refund_answer("ABNORMAL"))).refund(v.refund()).succeeded is False
    refused = v.wechat_answer(403, {"code": "NOT_ENOUGH", "message": "基本账户余额不足"})
    result = provider(transport=FakeApi(refused)).refund(v.refund())
    assert result.succeeded is False and "NOT_ENOUGH" in result.failure


def test_a_refund_wechat_could_not_take_now_is_asked_again():
    busy = v.wechat_answer(429, {"code": "FREQUENCY_LIMITED", "message": "频率超限"})
    with pytest.raises(ProviderError, match="ask again"):
        provider(transport=FakeApi(busy)).refund(v.refund())


def test_download_statement_checks_the_announced_hash():
    bill = v.wechat_tradebill(v.bill_entries(3))
    announced = {
        "hash_type": "SHA1",
        "hash_value": hashlib.sha1(bill).hexdigest(),
        "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=t",
    }
    api = FakeApi(v.wechat_answer(200, announced), HttpAnswer(200, {}, bill))
    wechat = provider(transport=api)

    lines = list(wechat.parse_statement(wechat.download_statement(date(2026, 3, 1))))

    assert len(lines) == 3
    assert authorization_verifies(*api.sent[1])
    corrupted = FakeApi(v.wechat_answer(200, announced), HttpAnswer(200, {}, bill + b"x"))
    with pytest.raises(ProviderError, match="hash"):
        provider(transport=corrupted).download_statement("2026-03-01")
