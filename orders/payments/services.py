"""Writes for payments: starting one, applying what the provider tells us, sweeps, and refunds.

The rules every function here keeps:
- A provider's notification is stored before anything acts on it, verified before it is trusted,
  and applied in one transaction with the payment row locked, so twenty copies of it arriving at
  once pay the order once. What the provider tells us another way (a query, a settlement
  statement) goes through the same apply path.
- Money that is not exactly what we asked for, or that arrives for an order that can no longer
  be paid, puts the payment in *needs review*; it never pays the order.
- Locks are taken in one order: payment, then notification, then order.
- Provider calls (network) happen outside database transactions.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q, Sum
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import status

from o2o.exceptions import DomainError
from o2o.money import MoneyError, money_from_minor, money_quantize, money_to_minor

from ..errors import OrderNotPayable
from ..models import Order, OrderEvent
from ..services import order_mark_paid, order_mark_refunded
from .models import Payment, PaymentConfig, PaymentNotification, Provider, Refund
from .providers.base import (
    Notification,
    NotificationIgnored,
    NotificationRejected,
    NotifyAnswer,
    ProviderError,
    provider_for,
)

logger = logging.getLogger("orders.payments")

PS, NS, RS = Payment.Status, PaymentNotification.Status, Refund.Status
O, Channel = Order.Status, OrderEvent.Channel  # noqa: E741 - O.PAID beside PS.PAID

# Payments that have not received money (as far as we know): money arriving moves them on.
AWAITING_MONEY = frozenset({PS.CREATED, PS.FAILED, PS.CLOSED})
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PS.CREATED: frozenset({PS.PAID, PS.NEEDS_REVIEW, PS.FAILED, PS.CLOSED}),
    PS.FAILED: frozenset({PS.PAID, PS.NEEDS_REVIEW, PS.CLOSED}),
    PS.CLOSED: frozenset({PS.PAID, PS.NEEDS_REVIEW}),
    PS.PAID: frozenset(),  # refunds change the refunded amount, not the status
    PS.NEEDS_REVIEW: frozenset(),  # staff resolve it (a refund); the record of why stays
}
# Money is with us: these payments can be refunded.
MONEY_IN = frozenset({PS.PAID, PS.NEEDS_REVIEW})
# Notifications still to be decided.
UNDECIDED = frozenset({NS.RECEIVED, NS.DEFERRED})
# A deferred notification is retried this many seconds later, then left to the beat sweep.
DEFERRED_RETRY_SECONDS = (10, 60, 300)
# Deferred this long without its payment appearing: staff look at it.
DEFERRED_GIVE_UP = timedelta(days=3)
# Headers never stored with a notification: they could carry someone's credentials.
_UNSTORED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})

# Sent inside the refund's transaction after a refund succeeded (points reversal and reports hook in here):
# order_refunded.send(sender=Refund, refund=..., order=..., fully=bool).
order_refunded = Signal()


class PaymentError(DomainError):
    code = "payment_error"


class PaymentUnavailable(PaymentError):
    code = "payment_unavailable"
    http_status = status.HTTP_503_SERVICE_UNAVAILABLE
    default_message = gettext_lazy("Online payment is not available for this shop right now.")


class RefundError(PaymentError):
    code = "refund_error"


class RefundNotAllowed(RefundError):
    code = "refund_not_allowed"
    http_status = status.HTTP_409_CONFLICT
    default_message = gettext_lazy("This payment cannot be refunded.")


class OverRefund(RefundError):
    code = "over_refund"
    default_message = gettext_lazy("That is more than can be refunded.")


# --------------------------------------------------------------------------- starting a payment


def sandbox_enabled() -> bool:
    """Whether the built-in sandbox may take payments (PAYMENTS_SANDBOX; on unless a deployment turns it off)."""
    return getattr(settings, "PAYMENTS_SANDBOX", True)


def payment_config_for_checkout(*, merchant_id: int, provider: str | None = None) -> PaymentConfig:
    """The merchant's active provider account to pay with: the one asked for, or the first active one
    (WeChat Pay, Alipay, then the sandbox). A merchant with no account at all gets a sandbox account
    with a fresh random secret, so a new shop can take (pretend) payments at once."""
    configs = list(PaymentConfig.objects.select_related("merchant").filter(merchant_id=merchant_id))
    preference = [Provider.WECHATPAY, Provider.ALIPAY, Provider.SANDBOX]
    usable = sorted(
        (
            config for config in configs
            if config.is_active and provider in (None, config.provider)
            and (config.provider != Provider.SANDBOX or sandbox_enabled())
        ),
        key=lambda config: preference.index(config.provider),
    )
    if usable:
        return usable[0]
    if not configs and sandbox_enabled() and provider in (None, Provider.SANDBOX):
        # Two first orders of a new shop at once: one insert wins, both read the same account.
        secret = secrets.token_urlsafe(32)
        fresh = PaymentConfig(merchant_id=merchant_id, provider=Provider.SANDBOX, signing_secret=secret)
        PaymentConfig.objects.bulk_create([fresh], ignore_conflicts=True)
        return PaymentConfig.objects.select_related("merchant").get(merchant_id=merchant_id, provider=Provider.SANDBOX)
    raise PaymentUnavailable()


def payment_start(*, order: Order, provider: str | None = None, client_ip: str = "", openid: str = "") -> str:
    """Where the customer's phone goes to pay `order`.

    Creates a Payment for the order's total (computed when the order was placed, never taken from
    the client) at the merchant's active provider, or reuses the order's open one for the same
    account and amount (a reload, the order page's "Pay now"). An order that is no longer waiting
    for payment sends the customer to the order page instead. `client_ip` and `openid` are the
    customer's, for providers with flows per browser (WeChat Pay H5 and JSAPI).
    """
    order_page = reverse("orders:order", args=[order.token])
    if order.status != O.PENDING_PAYMENT:
        return order_page
    config = payment_config_for_checkout(merchant_id=order.merchant_id, provider=provider)
    # Not locked: two taps at the same instant may open two attempts; only one can pay the order
    # (payment_one_paid_per_order), and the sweep closes the other.
    payment = Payment.objects.filter(
        order=order, provider=config.provider, status=PS.CREATED, amount=order.total, currency=order.currency
    ).first()
    if payment is None:
        payment = Payment.objects.create(
            merchant_id=order.merchant_id, order=order, provider=config.provider,
            out_trade_no=_trade_number(), amount=order.total, currency=order.currency,
        )
    payment.order = order
    checkout = provider_for(config).checkout(
        payment,
        notify_url=settings.SITE_URL + reverse("payment-notify", args=[config.provider, config.merchant.slug]),
        return_url=settings.SITE_URL + order_page,
        client_ip=client_ip,
        openid=openid,
    )
    return checkout.url or order_page


def _trade_number() -> str:
    # 28 characters, within WeChat Pay's 32 and Alipay's 64; 80 random bits, so nobody guesses another's.
    return f"{timezone.now():%Y%m%d}{secrets.token_hex(10)}"


# --------------------------------------------------------------------------- notifications


def payment_notify(
    *, config: PaymentConfig, body: bytes, headers: Mapping[str, str], remote_addr: str = ""
) -> tuple[NotifyAnswer, PaymentNotification]:
    """Everything the notify URL does: store the notification as it arrived, verify it, apply it.

    Returns what to answer the provider (accepted unless it failed verification) and the stored
    notification. A rejected one is logged at WARNING (never with a secret) and changes nothing.
    """
    provider = provider_for(config)
    notification = payment_notification_store(config=config, body=body, headers=headers)
    try:
        report = provider.verify_notification(body=body, headers=headers)
    except (NotificationRejected, ValueError, TypeError, KeyError) as error:
        reason = error.message if isinstance(error, NotificationRejected) else f"malformed ({type(error).__name__})"
        PaymentNotification.objects.filter(pk=notification.pk, status=NS.RECEIVED).update(
            status=NS.REJECTED, error=reason[:1000]
        )
        logger.warning(
            "payment notification %s rejected: provider=%s merchant=%s from=%s bytes=%d reason=%s",
            notification.pk, config.provider, config.merchant.slug, remote_addr or "?", len(body), reason,
        )
        notification.status, notification.error = NS.REJECTED, reason
        return provider.notify_answer(accepted=False), notification
    except NotificationIgnored as ignored:
        # Genuine, but nothing to apply (the customer has not paid yet, the trade was closed): kept for the
        # audit trail and acknowledged, or the provider would keep sending it; no payment is touched.
        verified, error = _report_json(ignored.report), _("The provider says %(state)s: not a payment.") % {
            "state": ignored.report.state
        }
        PaymentNotification.objects.filter(pk=notification.pk, status=NS.RECEIVED).update(
            status=NS.IGNORED, out_trade_no=ignored.report.out_trade_no[:64], verified=verified, error=error
        )
        notification.status, notification.error, notification.verified = NS.IGNORED, error, verified
        return provider.notify_answer(accepted=True), notification
    PaymentNotification.objects.filter(pk=notification.pk).update(
        out_trade_no=report.out_trade_no[:64], verified=_report_json(report)
    )
    notification.out_trade_no, notification.verified = report.out_trade_no[:64], _report_json(report)
    notification = payment_apply_notification(notification=notification, channel=Channel.API)
    return provider.notify_answer(accepted=True), notification


def payment_notification_store(
    *, config: PaymentConfig, body: bytes, headers: Mapping[str, str]
) -> PaymentNotification:
    """Keep the raw notification in a transaction of its own, before anything reads it."""
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")  # PostgreSQL text holds no NUL
    kept = {key.lower(): str(value)[:2000] for key, value in headers.items() if key.lower() not in _UNSTORED_HEADERS}
    with transaction.atomic():
        return PaymentNotification.objects.create(
            merchant_id=config.merchant_id, provider=config.provider, headers=kept, body=text,
        )


def payment_report_record(
    *, payment: Payment, report: Notification, source: str, channel: str = Channel.WORKER
) -> PaymentNotification:
    """Record what the provider told us without a push (our query, a settlement statement) as a
    notification of that source, and apply it through the same path as a pushed one."""
    if report.out_trade_no != payment.out_trade_no:
        raise ProviderError(
            _("the provider answered about %(theirs)s, not %(ours)s")
            % {"theirs": report.out_trade_no, "ours": payment.out_trade_no}
        )
    verified = _report_json(report)
    notification = PaymentNotification.objects.create(
        merchant_id=payment.merchant_id, provider=payment.provider, source=source, headers={},
        body=json.dumps(verified, sort_keys=True), out_trade_no=report.out_trade_no[:64], verified=verified,
    )
    return payment_apply_notification(notification=notification, channel=channel)


def payment_apply_notification(
    *, notification: PaymentNotification, channel: str = Channel.API, now: datetime | None = None
) -> PaymentNotification:
    """Act on a verified notification exactly once, in one transaction.

    - paid, amount and currency as asked, order still waiting: the payment and the order are paid;
    - the payment was already paid (or is under review): a duplicate, nothing changes;
    - a different amount or currency: the payment needs review, the order is not paid;
    - the order was cancelled, or paid by another payment, meanwhile: the payment needs review
      (money came in that staff must refund);
    - no payment with that trade number yet (the notification overtook the payment's commit):
      deferred, retried by a task shortly and by the beat sweep after that; never a duplicate.
    A notification already decided (by a concurrent apply) is returned as it is.
    """
    now = now or timezone.now()
    report = _report_from_json(notification.verified)
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update()
            .filter(merchant_id=notification.merchant_id, provider=notification.provider,
                    out_trade_no=report.out_trade_no)
            .first()
        )
        note = PaymentNotification.objects.select_for_update().get(pk=notification.pk)
        if note.status not in UNDECIDED:
            return note
        note.attempts += 1
        if payment is None:
            note.status = NS.DEFERRED
            note.error = _("No payment with this trade number yet; it will be applied when the payment appears.")
            note.save(update_fields=["status", "error", "attempts"])
            if note.attempts <= len(DEFERRED_RETRY_SECONDS):
                _apply_later(note.pk, DEFERRED_RETRY_SECONDS[note.attempts - 1])
            return note
        note.status, note.error = _payment_settle(payment=payment, report=report, channel=channel, now=now)
        note.payment, note.applied_at = payment, now
        note.save(update_fields=["status", "error", "attempts", "payment", "applied_at"])
    return note


def _apply_later(notification_id: int, countdown: int) -> None:
    from .tasks import payment_notification_apply

    transaction.on_commit(lambda: payment_notification_apply.apply_async(args=[notification_id], countdown=countdown))


def _payment_settle(*, payment: Payment, report: Notification, channel: str, now: datetime) -> tuple[str, str]:
    """Decide what the report means for the locked `payment`; the notification's status and note."""
    if not report.paid:
        return NS.IGNORED, _("The provider says %(state)s: not a payment.") % {"state": report.state}
    expected = money_to_minor(payment.amount, payment.currency)
    differs = report.amount_minor != expected or report.currency != payment.currency
    if payment.status not in AWAITING_MONEY:
        if differs and payment.status == PS.PAID:
            return NS.NEEDS_REVIEW, _money_differs(payment, report)
        return NS.DUPLICATE, ""
    money = {"provider_trade_no": report.provider_trade_no[:64], "paid_at": report.paid_at or now}
    if differs:
        reason = _money_differs(payment, report)
        _payment_move(payment=payment, to=PS.NEEDS_REVIEW, review_reason=reason, **money)
        return NS.NEEDS_REVIEW, reason
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    reason = ""
    if order.status != O.PENDING_PAYMENT:
        reason = _order_not_payable_reason(order)
    else:
        try:
            with transaction.atomic():
                _payment_move(payment=payment, to=PS.PAID, **money)
                order_mark_paid(order=order, channel=channel, now=now)
        except OrderNotPayable:
            order.refresh_from_db()
            reason = _order_not_payable_reason(order)
    if reason:
        _payment_move(payment=payment, to=PS.NEEDS_REVIEW, review_reason=reason, **money)
        return NS.NEEDS_REVIEW, reason
    return NS.APPLIED, ""


def _order_not_payable_reason(order: Order) -> str:
    if order.paid_at is not None:
        return _("Money came in for order #%(order)s, which was already paid: refund this payment.") % {
            "order": order.pk
        }
    return _("Money came in for order #%(order)s after it was %(status)s: refund the customer.") % {
        "order": order.pk, "status": order.get_status_display().lower(),
    }


def _money_differs(payment: Payment, report: Notification) -> str:
    try:
        got = f"{money_from_minor(report.amount_minor, report.currency)} {report.currency}"
    except MoneyError:
        got = f"{report.amount_minor} minor units of {report.currency}"
    return _("The provider reports %(got)s; the payment asked for %(expected)s %(currency)s. Not paid.") % {
        "got": got, "expected": payment.amount, "currency": payment.currency,
    }


def _payment_move(*, payment: Payment, to: str, **fields) -> None:
    allowed = [state for state, targets in PAYMENT_TRANSITIONS.items() if to in targets]
    updated = Payment.objects.filter(pk=payment.pk, status__in=allowed).update(status=to, **fields)
    # The caller holds the payment's row lock, so nobody can have moved it in between.
    assert updated == 1, f"payment {payment.pk} is {payment.status}, cannot become {to}"
    for name, value in {"status": to, **fields}.items():
        setattr(payment, name, value)


def _report_json(report: Notification) -> dict:
    data = asdict(report)
    data["paid_at"] = report.paid_at.isoformat() if report.paid_at else None
    return data


def _report_from_json(data: dict | None) -> Notification:
    if not data:
        raise ValueError("the notification was never verified; nothing to apply")
    paid_at = parse_datetime(data["paid_at"]) if data.get("paid_at") else None
    return Notification(**{**data, "paid_at": paid_at})


# --------------------------------------------------------------------------- sweeps


def payment_query(*, payment: Payment, channel: str = Channel.WORKER) -> PaymentNotification | None:
    """Ask the provider what became of `payment` and apply a payment it reports.

    Nothing paid and an order that can no longer be paid: the attempt is closed, so the sweep stops
    asking. Raises ProviderError when the provider cannot be asked.
    """
    config = PaymentConfig.objects.get(merchant_id=payment.merchant_id, provider=payment.provider)
    report = provider_for(config).query(payment)
    if report is not None and report.paid:
        return payment_report_record(
            payment=payment, report=report, source=PaymentNotification.Source.QUERY, channel=channel
        )
    if not Order.objects.filter(pk=payment.order_id, status=O.PENDING_PAYMENT).exists():
        Payment.objects.filter(pk=payment.pk, status=PS.CREATED).update(status=PS.CLOSED)
    return None


def payment_query_sweep(
    *, now: datetime | None = None, after: timedelta = timedelta(minutes=2), within: timedelta = timedelta(days=2),
    limit: int = 500,
) -> dict[str, int]:
    """Ask the providers about payments still waiting `after` creation (younger than `within`):
    a notification that never came is found here and applied by the same path. Idempotent."""
    now = now or timezone.now()
    due = Payment.objects.filter(
        status=PS.CREATED, created_at__lt=now - after, created_at__gte=now - within
    ).order_by("created_at", "id")[:limit]
    counts = {"queried": 0, "paid": 0, "needs_review": 0, "errors": 0}
    for payment in due:
        counts["queried"] += 1
        try:
            note = payment_query(payment=payment)
        except ProviderError as error:
            counts["errors"] += 1
            logger.warning("payment %s: the provider could not be asked: %s", payment.pk, error)
            continue
        if note is not None and note.status == NS.APPLIED:
            counts["paid"] += 1
        elif note is not None and note.status == NS.NEEDS_REVIEW:
            counts["needs_review"] += 1
    return counts


def payment_notifications_reapply(
    *, now: datetime | None = None, stuck_after: timedelta = timedelta(minutes=1), limit: int = 500
) -> dict[str, int]:
    """Apply again what is deferred (its payment may exist now) or stuck as received (the process
    died after verifying it). Deferred ones whose payment never appears go to review. Idempotent."""
    now = now or timezone.now()
    due = PaymentNotification.objects.filter(
        Q(status=NS.DEFERRED) | Q(status=NS.RECEIVED, received_at__lt=now - stuck_after), verified__isnull=False
    ).order_by("received_at", "id")[:limit]
    counts = {"applied": 0, "still_deferred": 0, "given_up": 0, "other": 0}
    for notification in due:
        if notification.status == NS.DEFERRED and notification.received_at < now - DEFERRED_GIVE_UP:
            counts["given_up"] += PaymentNotification.objects.filter(pk=notification.pk, status=NS.DEFERRED).update(
                status=NS.NEEDS_REVIEW,
                error=_("No payment with this trade number appeared within %(days)d days.")
                % {"days": DEFERRED_GIVE_UP.days},
            )
            continue
        note = payment_apply_notification(notification=notification, channel=Channel.WORKER, now=now)
        key = {NS.APPLIED: "applied", NS.DEFERRED: "still_deferred"}.get(note.status, "other")
        counts[key] += 1
    return counts


# --------------------------------------------------------------------------- refunds


def refund_create(
    *,
    payment: Payment | None = None,
    order: Order | None = None,
    amount: Decimal | None = None,
    reason: str,
    requested_by: AbstractBaseUser | None,
    channel: str = Channel.ADMIN,
) -> Refund:
    """Give money back through the provider: all that is left (`amount` None) or part of it.

    Never more than was paid minus what is refunded or being refunded, checked with the payment's
    row locked. The refund is recorded as pending before the provider is asked; the provider's
    answer makes it succeeded (the refunded total grows, the order becomes refunded once nothing
    is left) or failed with the provider's reason (no totals change). A provider that cannot be
    reached leaves it pending; `refunds_resume` asks again with the same refund number.
    """
    reason = (reason or "").strip()
    if not reason:
        raise RefundNotAllowed(_("Say why the money goes back (the reason is kept with the refund)."))
    payment = payment or _payment_to_refund(order)
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in MONEY_IN or locked.paid_at is None:
            raise RefundNotAllowed(_("Payment %(trade)s has received no money; there is nothing to refund.") % {
                "trade": locked.out_trade_no
            })
        left = locked.amount - locked.refunded_amount - _pending_total(locked)
        amount = left if amount is None else _refund_amount(amount, locked.currency)
        if amount <= 0:
            raise OverRefund(_("Nothing is left to refund on this payment.") if left <= 0 else
                             _("Enter an amount greater than zero."))
        if amount > left:
            raise OverRefund(
                _("At most %(left)s %(currency)s can be refunded: %(paid)s paid, %(done)s refunded or "
                  "being refunded already.")
                % {"left": left, "currency": locked.currency, "paid": locked.amount,
                   "done": locked.amount - left},
                refundable=left,
            )
        refund = Refund.objects.create(
            merchant_id=locked.merchant_id, payment=locked, order_id=locked.order_id,
            out_refund_no=f"R{_trade_number()}", amount=amount, reason=reason[:255], requested_by=requested_by,
        )
    return refund_send(refund=refund, channel=channel)


def _payment_to_refund(order: Order | None) -> Payment:
    if order is None:
        raise RefundNotAllowed(_("Say which payment or order to refund."))
    payments = list(Payment.objects.filter(order=order, status__in=MONEY_IN, paid_at__isnull=False))
    paid = [p for p in payments if p.status == PS.PAID]
    if len(paid) == 1:
        return paid[0]
    if len(payments) == 1:
        return payments[0]
    if not payments:
        raise RefundNotAllowed(_("Order #%(order)s has no payment that received money.") % {"order": order.pk})
    raise RefundNotAllowed(_("Order #%(order)s has several payments; choose one.") % {"order": order.pk})


def _refund_amount(amount: Decimal, currency: str) -> Decimal:
    try:
        quantised = money_quantize(amount, currency)
    except MoneyError:
        raise RefundNotAllowed(_("%(amount)s is not an amount of money.") % {"amount": amount}) from None
    if quantised != amount:
        raise RefundNotAllowed(_("%(amount)s has more decimals than %(currency)s has.") % {
            "amount": amount, "currency": currency,
        })
    return quantised


def _pending_total(payment: Payment) -> Decimal:
    return payment.refunds.filter(status=RS.PENDING).aggregate(total=Sum("amount"))["total"] or Decimal("0")


def refund_send(*, refund: Refund, channel: str = Channel.ADMIN) -> Refund:
    """Ask the provider for a pending refund (again, if need be: the refund number makes it idempotent
    at the provider) and record its answer. A refund already decided is returned as it is."""
    if refund.status != RS.PENDING:
        return refund
    config = PaymentConfig.objects.get(merchant_id=refund.merchant_id, provider=refund.payment.provider)
    try:
        result = provider_for(config).refund(refund)
    except ProviderError as error:
        logger.warning("refund %s: the provider could not be reached, left pending: %s", refund.out_refund_no, error)
        return refund
    now = timezone.now()
    if result.pending:
        # Accepted, not final: keep the provider's number and ask again later (refunds_resume).
        if result.provider_refund_no:
            Refund.objects.filter(pk=refund.pk, status=RS.PENDING).update(
                provider_refund_no=result.provider_refund_no[:64]
            )
            refund.refresh_from_db()
        logger.info("refund %s: the provider is still processing it", refund.out_refund_no)
        return refund
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        if not result.succeeded:
            Refund.objects.filter(pk=refund.pk, status=RS.PENDING).update(
                status=RS.FAILED, failure=result.failure or _("The provider refused the refund."), completed_at=now
            )
            refund.refresh_from_db()
            return refund
        decided = Refund.objects.filter(pk=refund.pk, status=RS.PENDING).update(
            status=RS.SUCCEEDED, provider_refund_no=result.provider_refund_no[:64], completed_at=now
        )
        refund.refresh_from_db()
        if not decided:
            return refund  # a concurrent resend recorded it first
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + refund.amount)
        payment.refresh_from_db()
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        fully = payment.refunded_amount == payment.amount
        note = _("%(kind)s refund %(amount)s %(currency)s (%(number)s): %(reason)s") % {
            "kind": _("Full") if fully else _("Partial"), "amount": refund.amount, "currency": payment.currency,
            "number": refund.out_refund_no, "reason": refund.reason,
        }
        # Only the payment that paid the order refunds the order; a stray second payment does not.
        if not (fully and payment.status == PS.PAID and order_mark_refunded(
            order=order, actor=refund.requested_by, channel=channel, note=note[:255], now=now
        )):
            OrderEvent.objects.create(
                merchant_id=order.merchant_id, order=order, from_status=order.status, to_status=order.status,
                actor=refund.requested_by, channel=channel, note=note[:255],
            )
        order_refunded.send(sender=Refund, refund=refund, order=order, fully=fully)
    return refund


def refunds_resume(*, now: datetime | None = None, after: timedelta = timedelta(minutes=2), limit: int = 200) -> int:
    """Ask again for refunds left pending (the provider did not answer, or answered that it is still
    processing them); how many got decided."""
    now = now or timezone.now()
    decided = 0
    for refund in Refund.objects.filter(status=RS.PENDING, created_at__lt=now - after).select_related("payment")[
        :limit
    ]:
        if refund_send(refund=refund, channel=Channel.WORKER).status != RS.PENDING:
            decided += 1
    return decided
