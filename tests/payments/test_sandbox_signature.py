"""The sandbox's notification signature: what verifies, and that any change, other key or stale
timestamp is refused (no database: the provider only checks what it is given)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from merchants.models import Merchant
from orders.payments.models import PaymentConfig, Provider
from orders.payments.providers.base import NotificationRejected
from orders.payments.providers.sandbox import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SandboxProvider,
    sandbox_notification_body,
    sandbox_notification_headers,
    sandbox_signature,
)

SECRET = "s3cret-key-of-the-tea-house-0123456789"


def provider(secret: str = SECRET) -> SandboxProvider:
    return SandboxProvider(
        PaymentConfig(merchant=Merchant(slug="teahouse"), provider=Provider.SANDBOX, signing_secret=secret)
    )


def body(amount_minor: int = 9900, **fields) -> bytes:
    values = {
        "mchid": "sandbox-teahouse",
        "out_trade_no": "20261125abcdef0123456789ab",
        "transaction_id": "SBX2026112500000001",
        "amount_minor": amount_minor,
        "currency": "CNY",
        "success_time": timezone.now(),
        **fields,
    }
    return sandbox_notification_body(**values)


def test_a_correctly_signed_notification_verifies_into_what_it_says():
    payload = body(12345)
    report = provider().verify_notification(
        body=payload, headers=sandbox_notification_headers(secret=SECRET, body=payload)
    )
    assert (report.out_trade_no, report.provider_trade_no) == ("20261125abcdef0123456789ab", "SBX2026112500000001")
    assert (report.amount_minor, report.currency, report.paid, report.state) == (12345, "CNY", True, "SUCCESS")
    assert report.paid_at is not None and report.paid_at.tzinfo is not None


@settings(max_examples=200)
@given(data=st.data())
def test_any_single_byte_changed_in_the_body_is_rejected(data):
    payload = body()
    headers = sandbox_notification_headers(secret=SECRET, body=payload)
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="index")
    replacement = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != payload[index]), label="byte")
    tampered = payload[:index] + bytes([replacement]) + payload[index + 1 :]
    with pytest.raises(NotificationRejected, match="signature"):
        provider().verify_notification(body=tampered, headers=headers)


@given(other=st.text(min_size=1, max_size=64).filter(lambda key: key != SECRET))
def test_a_notification_signed_with_any_other_key_is_rejected(other):
    payload = body()
    with pytest.raises(NotificationRejected, match="signature"):
        provider().verify_notification(body=payload, headers=sandbox_notification_headers(secret=other, body=payload))


@given(seconds=st.integers(min_value=301, max_value=10 * 365 * 86400), late=st.booleans())
def test_a_notification_more_than_five_minutes_off_is_rejected_as_stale(seconds, late):
    payload = body()
    when = timezone.now() + timedelta(seconds=-seconds if late else seconds)
    with pytest.raises(NotificationRejected, match="5 minutes"):
        provider().verify_notification(
            body=payload, headers=sandbox_notification_headers(secret=SECRET, body=payload, now=when)
        )


@given(seconds=st.integers(min_value=-290, max_value=290))
def test_a_notification_within_five_minutes_verifies(seconds):
    payload = body()
    headers = sandbox_notification_headers(secret=SECRET, body=payload, now=timezone.now() + timedelta(seconds=seconds))
    assert provider().verify_notification(body=payload, headers=headers).paid


def test_a_captured_notification_cannot_be_made_fresh_by_changing_its_timestamp():
    payload = body()
    old = sandbox_notification_headers(secret=SECRET, body=payload, now=timezone.now() - timedelta(minutes=10))
    refreshed = {**old, TIMESTAMP_HEADER: str(int(timezone.now().timestamp()))}
    with pytest.raises(NotificationRejected, match="signature"):
        provider().verify_notification(body=payload, headers=refreshed)


@pytest.mark.parametrize(
    "change",
    [
        {SIGNATURE_HEADER: None},
        {TIMESTAMP_HEADER: None},
        {TIMESTAMP_HEADER: "soon"},
        {TIMESTAMP_HEADER: "-1"},
        {TIMESTAMP_HEADER: "１２３"},  # full-width digits are digits to Python, not to us
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: "zz" * 32},
        {SIGNATURE_HEADER: "签名"},
    ],
)
def test_missing_or_malformed_signature_headers_are_rejected(change):
    payload = body()
    headers = sandbox_notification_headers(secret=SECRET, body=payload)
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    with pytest.raises(NotificationRejected):
        provider().verify_notification(body=payload, headers=headers)


def test_header_names_are_read_whatever_their_case():
    payload = body()
    headers = {name.lower(): value for name, value in sandbox_notification_headers(secret=SECRET, body=payload).items()}
    assert provider().verify_notification(body=payload, headers=headers).paid


def test_an_account_without_a_secret_verifies_nothing():
    payload = body()
    with pytest.raises(NotificationRejected, match="no signing secret"):
        provider("").verify_notification(body=payload, headers=sandbox_notification_headers(secret="", body=payload))


def signed(event: dict) -> tuple[bytes, dict]:
    payload = json.dumps(event).encode()
    return payload, sandbox_notification_headers(secret=SECRET, body=payload)


GOOD = {
    "mchid": "sandbox-teahouse",
    "out_trade_no": "T1",
    "transaction_id": "SBX1",
    "trade_state": "SUCCESS",
    "amount": {"total": 100, "currency": "CNY"},
    "success_time": "2026-11-25T10:00:00+08:00",
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mchid": "sandbox-rival"}, "another merchant account"),
        ({"amount": {"total": True, "currency": "CNY"}}, "whole number of fen"),
        ({"amount": {"total": 99.5, "currency": "CNY"}}, "whole number of fen"),
        ({"amount": {"total": "100", "currency": "CNY"}}, "whole number of fen"),
        ({"amount": {"total": -1, "currency": "CNY"}}, "whole number of fen"),
        ({"amount": {"total": 100, "currency": "cny"}}, "ISO 4217"),
        ({"amount": None}, "amount is missing"),
        ({"out_trade_no": ""}, "out_trade_no"),
        ({"out_trade_no": "x" * 65}, "out_trade_no"),
        ({"success_time": "2026-11-25 10:00:00"}, "offset"),
    ],
)
def test_signed_but_malformed_content_is_rejected(change, reason):
    payload, headers = signed({**GOOD, **change})
    with pytest.raises(NotificationRejected, match=reason):
        provider().verify_notification(body=payload, headers=headers)


@pytest.mark.parametrize("payload", [b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_json_object_is_rejected(payload):
    with pytest.raises(NotificationRejected, match="JSON"):
        provider().verify_notification(body=payload, headers=sandbox_notification_headers(secret=SECRET, body=payload))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(amount_minor=st.integers(min_value=0, max_value=10**13), currency=st.sampled_from(["CNY", "HKD", "USD", "JPY"]))
def test_any_amount_and_currency_arrive_exactly_as_signed(amount_minor, currency):
    payload = body(amount_minor, currency=currency)
    report = provider().verify_notification(
        body=payload, headers=sandbox_notification_headers(secret=SECRET, body=payload)
    )
    assert (report.amount_minor, report.currency) == (amount_minor, currency)


def test_the_signature_covers_the_timestamp_and_the_body():
    assert sandbox_signature(secret="k", timestamp="1", body=b"x") != sandbox_signature(
        secret="k", timestamp="2", body=b"x"
    )
    assert sandbox_signature(secret="k", timestamp="1", body=b"x") != sandbox_signature(
        secret="k", timestamp="1", body=b"y"
    )
