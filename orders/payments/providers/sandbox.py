"""The built-in sandbox provider: both sides of a pretend payment platform, for demos and tests.

Our side (`SandboxProvider`) talks to it exactly as to Alipay or WeChat Pay: checkout sends the
customer to its pay page, its notifications are verified before anything trusts them, queries
and refunds go to its ledger, and its daily statement is WeChat Pay's trade bill, read by WeChat Pay's reader.

The provider's side (the ledger in SandboxTrade/SandboxRefund, `sandbox_trade_pay`,
`sandbox_notification_send`, `sandbox_statement`) stands in for the provider's servers. Nothing
on our side reads the ledger to decide whether an order is paid.

Notifications are JSON, shaped like WeChat Pay's, signed with HMAC-SHA256 under the merchant's
sandbox secret over `timestamp + "\\n" + body`; the timestamp is signed too, so a captured
notification cannot be made fresh again, and one older than five minutes is refused.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from o2o.money import MoneyError, money_from_minor, money_to_minor

from ..models import PaymentConfig, Provider, SandboxRefund, SandboxTrade
from .base import (
    Checkout,
    Notification,
    NotificationRejected,
    NotifyAnswer,
    PaymentProvider,
    RefundResult,
    StatementLine,
    paid_or_ignored,
)
from .signing import hmac_sha256_hex, hmac_sha256_verify
from .wechatpay import tradebill_lines

if TYPE_CHECKING:
    from merchants.models import Merchant

    from ..models import Payment, Refund

logger = logging.getLogger("orders.payments.sandbox")

SIGNATURE_HEADER = "X-Sandbox-Signature"
TIMESTAMP_HEADER = "X-Sandbox-Timestamp"
# How far a notification's timestamp may be from our clock, either way (WeChat Pay allows the same).
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The sandbox's fee: 0.6%, rounded half up to the fen, as WeChat Pay and Alipay charge small merchants.
FEE_PER_MILLE = 6
FEE_RATE_TEXT = "0.60%"
# WeChat Pay cuts its bills at Beijing midnight; so does the sandbox.
STATEMENT_TZ = ZoneInfo("Asia/Shanghai")

# The columns of WeChat Pay's "ALL" trade bill (27-column layout), in order.
BILL_COLUMNS = [
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
    "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
    "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额",
    "费率备注",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额",
]  # fmt: skip


def sandbox_merchant_id(config: PaymentConfig) -> str:
    """The account number the sandbox puts in every notification (WeChat Pay's `mchid`)."""
    return config.merchant_no or f"sandbox-{config.merchant.slug}"


def sandbox_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp\\nbody` under the merchant's sandbox secret."""
    return hmac_sha256_hex(secret, _signed(timestamp, body))


def _signed(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode() + b"\n" + body


def sandbox_notification_body(
    *,
    mchid: str,
    out_trade_no: str,
    transaction_id: str,
    amount_minor: int,
    currency: str,
    success_time: datetime | None,
    trade_state: str = "SUCCESS",
) -> bytes:
    """A payment notification as the sandbox sends it (the fields of WeChat Pay's decrypted resource)."""
    event = {
        "id": secrets.token_hex(8),
        "event_type": "TRANSACTION.SUCCESS" if trade_state == "SUCCESS" else f"TRANSACTION.{trade_state}",
        "mchid": mchid,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id,
        "trade_state": trade_state,
        "amount": {"total": amount_minor, "currency": currency},
        "success_time": success_time.isoformat() if success_time else None,
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def sandbox_notification_headers(*, secret: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    timestamp = str(int((now or timezone.now()).timestamp()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sandbox_signature(secret=secret, timestamp=timestamp, body=body),
        "Content-Type": "application/json",
    }


class SandboxProvider(PaymentProvider):
    name = Provider.SANDBOX
    statement_format = "wechatpay_tradebill"

    def checkout(
        self, payment: Payment, *, notify_url: str, return_url: str, client_ip: str = "", openid: str = ""
    ) -> Checkout:
        # One flow (the sandbox's pay page) for every phone: client_ip and openid change nothing.
        # The "create order" call a real provider answers with a pay URL: the trade now exists at the
        # provider, waiting for the customer. Opening it again (a reload) keeps the same trade.
        SandboxTrade.objects.bulk_create(
            [
                SandboxTrade(
                    merchant_id=payment.merchant_id,
                    out_trade_no=payment.out_trade_no,
                    amount_minor=money_to_minor(payment.amount, payment.currency),
                    currency=payment.currency,
                    description=f"Order #{payment.order_id}",
                    notify_url=notify_url,
                    return_url=return_url,
                )
            ],
            ignore_conflicts=True,
        )
        return Checkout(url=reverse("orders:sandbox-pay", args=[payment.order.token]))

    def verify_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        secret = self.config.signing_secret
        if not secret:
            raise NotificationRejected(_("The sandbox account has no signing secret; nothing can be verified."))
        lower = {key.lower(): value for key, value in headers.items()}
        timestamp = lower.get(TIMESTAMP_HEADER.lower(), "").strip()
        signature = lower.get(SIGNATURE_HEADER.lower(), "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise NotificationRejected(_("Missing or malformed timestamp header."))
        if not hmac_sha256_verify(secret, _signed(timestamp, body), signature):
            raise NotificationRejected(_("The signature does not match."))
        if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW.total_seconds():
            raise NotificationRejected(_("The timestamp is more than 5 minutes away from now (stale or replayed)."))
        return paid_or_ignored(_notification_parse(body, mchid=sandbox_merchant_id(self.config)))

    def notify_answer(self, *, accepted: bool) -> NotifyAnswer:
        if accepted:
            return NotifyAnswer(status=200, body='{"code":"SUCCESS"}', content_type="application/json")
        return NotifyAnswer(status=400, body='{"code":"FAIL","message":"rejected"}', content_type="application/json")

    def query(self, payment: Payment) -> Notification | None:
        trade = SandboxTrade.objects.filter(
            merchant_id=self.config.merchant_id, out_trade_no=payment.out_trade_no
        ).first()
        if trade is None:
            return None
        return _trade_report(trade)

    def refund(self, refund: Refund) -> RefundResult:
        payment = refund.payment
        with transaction.atomic():
            earlier = SandboxRefund.objects.filter(out_refund_no=refund.out_refund_no).first()
            if earlier is not None:
                # A repeated request (our retry after a timeout) is answered, never booked twice.
                return RefundResult(provider_refund_no=earlier.provider_refund_no, succeeded=True)
            trade = (
                SandboxTrade.objects.select_for_update()
                .filter(merchant_id=self.config.merchant_id, out_trade_no=payment.out_trade_no)
                .first()
            )
            if trade is None or trade.paid_at is None:
                return RefundResult(
                    "",
                    False,
                    _("The sandbox has no paid trade %(out_trade_no)s.") % {"out_trade_no": payment.out_trade_no},
                )
            try:
                minor = money_to_minor(refund.amount, trade.currency)
            except MoneyError as error:
                return RefundResult("", False, str(error))
            left = trade.amount_minor - trade.refunded_minor
            if minor > left:
                return RefundResult(
                    "",
                    False,
                    _("The refund (%(amount)s) is more than what is left of the trade (%(left)s).")
                    % {"amount": refund.amount, "left": money_from_minor(left, trade.currency)},
                )
            booked = SandboxRefund.objects.create(
                trade=trade,
                out_refund_no=refund.out_refund_no,
                provider_refund_no=_provider_number("SBR"),
                amount_minor=minor,
            )
            SandboxTrade.objects.filter(pk=trade.pk).update(refunded_minor=F("refunded_minor") + minor)
        return RefundResult(provider_refund_no=booked.provider_refund_no, succeeded=True)

    def parse_statement(self, stream: BinaryIO) -> Iterator[StatementLine]:
        """The sandbox writes WeChat Pay's trade bill, so WeChat Pay's reader reads it (one reader,
        one set of rules for fees, REVOKED rows and the summary)."""
        return tradebill_lines(stream, merchant_no=self.statement_account())

    def statement_account(self) -> str:
        return sandbox_merchant_id(self.config)

    def download_statement(self, statement_date: date) -> BinaryIO:
        """The sandbox's daily statement, generated from its ledger as the provider's servers would."""
        return io.BytesIO(sandbox_statement(self.config.merchant, statement_date))


def _notification_parse(body: bytes, *, mchid: str) -> Notification:
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NotificationRejected(_("The body is not JSON.")) from None
    if not isinstance(event, dict):
        raise NotificationRejected(_("The body is not a JSON object."))
    if event.get("mchid") != mchid:
        raise NotificationRejected(_("The notification is for another merchant account."))
    out_trade_no, transaction_id, state = (event.get(k) for k in ("out_trade_no", "transaction_id", "trade_state"))
    amount = event.get("amount")
    if not (isinstance(out_trade_no, str) and 0 < len(out_trade_no) <= 64):
        raise NotificationRejected(_("out_trade_no is missing or malformed."))
    if not (isinstance(transaction_id, str) and len(transaction_id) <= 64 and isinstance(state, str)):
        raise NotificationRejected(_("transaction_id or trade_state is missing or malformed."))
    if not isinstance(amount, dict):
        raise NotificationRejected(_("amount is missing."))
    total, currency = amount.get("total"), amount.get("currency")
    # bool is an int to Python; `true` fen is not an amount.
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise NotificationRejected(_("amount.total must be a whole number of fen."))
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise NotificationRejected(_("amount.currency must be an ISO 4217 code."))
    paid_at = None
    if event.get("success_time") is not None:
        paid_at = parse_datetime(event["success_time"]) if isinstance(event["success_time"], str) else None
        if paid_at is None or timezone.is_naive(paid_at):
            raise NotificationRejected(_("success_time is not a date and time with its offset."))
    return Notification(
        out_trade_no=out_trade_no,
        provider_trade_no=transaction_id,
        amount_minor=total,
        currency=currency,
        paid=state == "SUCCESS",
        state=state,
        paid_at=paid_at,
    )


def _trade_report(trade: SandboxTrade) -> Notification:
    if trade.paid_at is None:
        state = "NOTPAY"
    else:
        state = "REFUND" if trade.refunded_minor else "SUCCESS"
    return Notification(
        out_trade_no=trade.out_trade_no,
        provider_trade_no=trade.provider_trade_no,
        amount_minor=trade.amount_minor,
        currency=trade.currency,
        paid=trade.paid_at is not None,
        state=state,
        paid_at=trade.paid_at,
    )


def _provider_number(prefix: str) -> str:
    return f"{prefix}{timezone.now():%Y%m%d}{secrets.randbelow(10**16):016d}"


# --------------------------------------------------------------------------- the provider's side


def sandbox_trade_pay(*, trade: SandboxTrade, deliveries: int = 1, delay_seconds: int = 0) -> bool:
    """The customer pays on the sandbox page: the provider books the money, then tells the merchant.

    `deliveries` notifications are sent (0: lost, 2: a duplicate), each `delay_seconds` late, through
    a Celery task after the commit, as a provider's own notifier would. Paying a paid trade again
    changes nothing and sends nothing. Returns whether this call paid it.
    """
    from ..tasks import sandbox_notification_send

    now = timezone.now()
    with transaction.atomic():
        paid = SandboxTrade.objects.filter(pk=trade.pk, paid_at__isnull=True).update(
            paid_at=now, provider_trade_no=_provider_number("SBX")
        )
        if paid:
            for _delivery in range(max(deliveries, 0)):
                transaction.on_commit(
                    lambda: sandbox_notification_send.apply_async(args=[trade.pk], countdown=max(delay_seconds, 0))
                )
    trade.refresh_from_db()
    return bool(paid)


def notification_deliver(*, url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST one notification to the merchant's notify URL; the HTTP status it got back (0: unreachable).

    The one seam between the sandbox and the network: tests with eager Celery replace it with a
    transport that calls the Django test client.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) notify URL: {url!r}")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - scheme checked above
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, TimeoutError) as error:
        logger.warning("sandbox notification to %s not delivered: %s", url, error)
        return 0


def sandbox_notification_send(*, trade_id: int) -> int:
    """Sign the paid trade's notification now (fresh timestamp) and deliver it; the answer's status."""
    trade = SandboxTrade.objects.select_related("merchant").get(pk=trade_id)
    if trade.paid_at is None:
        return 0
    config = PaymentConfig.objects.get(merchant_id=trade.merchant_id, provider=Provider.SANDBOX)
    body = sandbox_notification_body(
        mchid=sandbox_merchant_id(config),
        out_trade_no=trade.out_trade_no,
        transaction_id=trade.provider_trade_no,
        amount_minor=trade.amount_minor,
        currency=trade.currency,
        success_time=trade.paid_at,
    )
    headers = sandbox_notification_headers(secret=config.signing_secret, body=body)
    return notification_deliver(url=trade.notify_url, body=body, headers=headers)


def sandbox_statement(merchant: Merchant, date: date) -> bytes:
    """The sandbox's daily statement for `merchant`: WeChat Pay's "ALL" trade bill (27 columns) of
    `date` in Beijing time — payments by the time they were paid, refunds by the time they were booked."""
    start = datetime.combine(date, dtime.min, tzinfo=STATEMENT_TZ)
    end = start + timedelta(days=1)
    config = PaymentConfig.objects.filter(merchant=merchant, provider=Provider.SANDBOX).first()
    mchid = sandbox_merchant_id(config) if config else f"sandbox-{merchant.slug}"
    appid = (config.app_id if config else "") or "sandbox"
    rows: list[tuple[datetime, int, list[str]]] = []
    totals = dict.fromkeys(("trades", "refunds", "fees"), 0)
    trades = SandboxTrade.objects.filter(merchant=merchant, paid_at__gte=start, paid_at__lt=end)
    for trade in trades.order_by("paid_at", "id"):
        fee = _fee_minor(trade.amount_minor)
        amount = _yuan(trade.amount_minor, trade.currency)
        rows.append(
            (
                trade.paid_at,
                trade.pk,
                _bill_row(
                    when=trade.paid_at,
                    appid=appid,
                    mchid=mchid,
                    trade=trade,
                    state="SUCCESS",
                    settled=amount,
                    refund_no="",
                    out_refund_no="",
                    refund=_yuan(0, trade.currency),
                    fee=fee,
                    ordered=amount,
                ),
            )
        )
        totals["trades"] += trade.amount_minor
        totals["fees"] += fee
    refunds = SandboxRefund.objects.filter(trade__merchant=merchant, created_at__gte=start, created_at__lt=end)
    for refund in refunds.select_related("trade").order_by("created_at", "id"):
        trade, fee = refund.trade, -_fee_minor(refund.amount_minor)
        rows.append(
            (
                refund.created_at,
                refund.pk,
                _bill_row(
                    when=refund.created_at,
                    appid=appid,
                    mchid=mchid,
                    trade=trade,
                    state="REFUND",
                    settled=_yuan(0, trade.currency),
                    refund_no=refund.provider_refund_no,
                    out_refund_no=refund.out_refund_no,
                    refund=_yuan(refund.amount_minor, trade.currency),
                    fee=fee,
                    ordered=_yuan(0, trade.currency),
                ),
            )
        )
        totals["refunds"] += refund.amount_minor
        totals["fees"] += fee
    rows.sort(key=lambda row: (row[0], row[1]))
    # Written as WeChat Pay writes it: plain commas, a backtick before every data cell, no quoting
    # (so no cell may hold a comma).
    lines = [",".join(BILL_COLUMNS)]
    lines += [",".join("`" + cell.replace(",", " ") for cell in cells) for _when, _pk, cells in rows]
    currency = merchant.currency
    lines.append(",".join(SUMMARY_COLUMNS))
    lines.append(",".join("`" + cell for cell in [
        str(len(rows)), _yuan(totals["trades"], currency), _yuan(totals["refunds"], currency), _yuan(0, currency),
        _fee_text(totals["fees"], currency), _yuan(totals["trades"], currency), _yuan(totals["refunds"], currency),
    ]))  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _bill_row(
    *,
    when: datetime,
    appid: str,
    mchid: str,
    trade: SandboxTrade,
    state: str,
    settled: str,
    refund_no: str,
    out_refund_no: str,
    refund: str,
    fee: int,
    ordered: str,
) -> list[str]:
    zero = _yuan(0, trade.currency)
    return [
        timezone.localtime(when, STATEMENT_TZ).strftime("%Y-%m-%d %H:%M:%S"), appid, mchid, "0", "",
        trade.provider_trade_no, trade.out_trade_no, "sandbox-customer", "NATIVE", state, "OTHERS", trade.currency,
        settled, zero, refund_no, out_refund_no, refund, zero, "ORIGINAL" if state == "REFUND" else "",
        "SUCCESS" if state == "REFUND" else "", trade.description, "", _fee_text(fee, trade.currency), FEE_RATE_TEXT,
        ordered, refund, "",
    ]  # fmt: skip


def _fee_minor(amount_minor: int) -> int:
    return (amount_minor * FEE_PER_MILLE + 500) // 1000


def _yuan(minor: int, currency: str) -> str:
    return str(money_from_minor(minor, currency))


def _fee_text(minor: int, currency: str) -> str:
    # WeChat Pay prints fees with three more decimals than the currency has, always zero; refunds give
    # the fee back, so theirs are negative.
    text = f"{'-' if minor < 0 else ''}{money_from_minor(abs(minor), currency)}"
    return text + ("000" if "." in text else "")
