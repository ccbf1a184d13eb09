"""Queue, send and resume customer notifications: exactly one message per (order, kind, channel).

Queue: the rows are inserted in the transaction that makes the news (marking orders ready), and their
sends are published to Celery only when it commits (`transaction.on_commit`): a rolled-back change
tells nobody, and a committed one always has its rows, even if the broker was down (the resume sweep
finds them). Send: a row is claimed (a conditional UPDATE to `sending`) before the gateway hears of
it, so a retried, redelivered or doubled task finds it claimed or sent and sends nothing. A failure is
recorded on the row and retried with a growing wait, then given up; staff see every state in the admin.

A claim whose worker died mid-send is taken over after CLAIM_TIMEOUT and sent again with the same
reference (the gateway's Idempotency-Key): the one case where a gateway that ignores it could deliver
twice, rather than never.
"""

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from .backends import DeliveryFailed, backend_for
from .models import Notification

logger = logging.getLogger(__name__)

N = Notification.Status
# Far longer than a gateway or SMTP timeout (10 s) and the send task's time limit (60 s).
CLAIM_TIMEOUT = timedelta(minutes=5)
# Published sends normally run within seconds; the sweep leaves them that long before stepping in.
RESUME_GRACE = timedelta(minutes=1)
RESUME_BATCH = 500


def notification_backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 1, 2, 4, 8 ... minutes, at most an hour."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def _order_ready_message(order) -> dict[str, str]:
    """Subject and text of "ready for pickup", in the site's language, in the merchant's time zone."""
    from zoneinfo import ZoneInfo

    store = order.pickup_store
    deadline = order.pickup_deadline.astimezone(ZoneInfo(order.merchant.timezone)) if order.pickup_deadline else None
    with translation.override(settings.LANGUAGE_CODE):
        values = {
            "merchant": order.merchant.name, "order": order.pk, "title": order.promotion.title,
            "store": store.name if store else "", "address": store.address if store else "",
            "deadline": formats.date_format(deadline, "Y-m-d H:i") if deadline else "",
            "url": settings.SITE_URL + reverse("orders:order", args=[order.token]),
        }
        return {
            "subject": _("Ready for pickup: %(title)s") % values,
            "body": _(
                "[%(merchant)s] Your order #%(order)s (%(title)s) is ready for pickup at %(store)s, "
                "%(address)s. Show your voucher at the counter by %(deadline)s: %(url)s"
            ) % values,
        }


_MESSAGES = {Notification.Kind.ORDER_READY: _order_ready_message}


def notifications_queue(*, orders: list, kind: str, now: datetime | None = None) -> int:
    """Queue `kind` for each order's member: SMS to their phone, e-mail if they gave an address (each
    channel only while it is on). Call inside the transaction that makes the news; the sends are
    published when it commits. Rows that exist already stay as they are. Two queries, however many.

    `orders` need their member, merchant, promotion and pickup store loaded."""
    now = now or timezone.now()
    rows = []
    for order in orders:
        message = _MESSAGES[kind](order)
        addresses = {Notification.Channel.SMS: order.member.phone, Notification.Channel.EMAIL: order.member.email}
        for channel, recipient in addresses.items():
            if recipient and backend_for(channel) is not None:
                rows.append(Notification(
                    merchant_id=order.merchant_id, member_id=order.member_id, order_id=order.pk, kind=kind,
                    channel=channel, recipient=recipient, subject=message["subject"][:200], body=message["body"],
                    created_at=now, next_attempt_at=now,
                ))
    if not rows:
        return 0
    # ignore_conflicts: the unique (order, kind, channel) keeps the first; a second queueing sends nothing.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(
        Notification.objects.filter(order_id__in=[o.pk for o in orders], kind=kind, status=N.PENDING)
        .values_list("pk", flat=True)
    )
    _publish_on_commit(ids)
    return len(ids)


def _publish_on_commit(ids: list[int]) -> None:
    from members.tasks import notification_send

    for pk in ids:
        # robust: a broker that is down must not turn a committed change into an error page; the
        # resume sweep sends what was never published.
        transaction.on_commit(partial(notification_send.delay, pk), robust=True)


def notification_send(*, notification_id: int, now: datetime | None = None) -> tuple[Notification | None, bool]:
    """Send one notification if it is due and nobody else is sending it: (the row afterwards, whether
    this call tried). Records sent, or failed with the error and when to try again, or gave up."""
    now = now or timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id)
        .filter(Q(status__in=[N.PENDING, N.FAILED], next_attempt_at__lte=now) | Q(status=N.SENDING,
                                                                                   claimed_at__lt=now - CLAIM_TIMEOUT))
        .update(status=N.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    notification = Notification.objects.filter(pk=notification_id).first()
    if not claimed or notification is None:
        return notification, False
    mine = Notification.objects.filter(pk=notification.pk, status=N.SENDING, claimed_at=now)
    backend = backend_for(notification.channel)
    try:
        if backend is None:
            raise DeliveryFailed("this channel was switched off after the message was queued")
        reference = backend.send(
            to=notification.recipient, subject=notification.subject, body=notification.body,
            reference=notification.reference,
        )
    except DeliveryFailed as error:
        gave_up = notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS or backend is None
        fields = {"status": N.GAVE_UP if gave_up else N.FAILED, "last_error": str(error)[:500]}
        if not gave_up:
            fields["next_attempt_at"] = now + notification_backoff(notification.attempts)
        mine.update(**fields)
        logger.warning("notification %s (%s to %s) failed, attempt %s: %s", notification.pk, notification.channel,
                       notification.recipient, notification.attempts, error)
    else:
        mine.update(status=N.SENT, sent_at=timezone.now(), provider_reference=reference[:100], last_error="")
    notification.refresh_from_db()
    return notification, True


def notifications_resume(*, now: datetime | None = None) -> int:
    """Publish a send for every notification that is due and not in flight: queued ones whose task was
    lost, failures whose wait is over, claims of a worker that died. Idempotent (the claim decides)."""
    from members.tasks import notification_send as send_task

    now = now or timezone.now()
    due = Notification.objects.filter(
        Q(status=N.PENDING, created_at__lt=now - RESUME_GRACE)
        | Q(status=N.FAILED, next_attempt_at__lte=now)
        | Q(status=N.SENDING, claimed_at__lt=now - CLAIM_TIMEOUT)
    ).order_by("next_attempt_at", "id").values_list("pk", flat=True)[:RESUME_BATCH]
    ids = list(due)
    for pk in ids:
        send_task.delay(pk)
    return len(ids)
