"""Payment tasks: thin, take ids, safe to run twice (the services they call are idempotent)."""

from celery import shared_task

from . import services
from .models import PaymentNotification
from .providers import sandbox


@shared_task(acks_late=True, time_limit=60)
def payment_notification_apply(notification_id: int) -> str:
    """Apply a deferred notification again (its payment may have committed since)."""
    notification = PaymentNotification.objects.filter(pk=notification_id).first()
    if notification is None or notification.status not in services.UNDECIDED:
        return notification.status if notification else "missing"
    return services.payment_apply_notification(
        notification=notification, channel=services.Channel.WORKER
    ).status


@shared_task(acks_late=True, time_limit=300)
def payment_query_sweep() -> dict[str, int]:
    return services.payment_query_sweep()


@shared_task(acks_late=True, time_limit=300)
def payment_notifications_reapply() -> dict[str, int]:
    return services.payment_notifications_reapply()


@shared_task(acks_late=True, time_limit=300)
def refunds_resume() -> int:
    return services.refunds_resume()


# Not acks_late: a redelivered send is one more notification, which the notify URL takes as a duplicate,
# but the sandbox means to send exactly what the pay page asked for.
@shared_task(time_limit=60)
def sandbox_notification_send(trade_id: int) -> int:
    """The sandbox provider's notifier: POST the signed notification of a paid trade to the merchant."""
    return sandbox.sandbox_notification_send(trade_id=trade_id)
