"""Notification sends and their resume sweep: thin, ids in, safe to run twice (the row's claim decides)."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import Notification
from .notifications import services


@shared_task(bind=True, acks_late=True, time_limit=60, max_retries=None)
def notification_send(self, notification_id: int) -> str | None:
    notification, tried = services.notification_send(notification_id=notification_id)
    if notification is None:
        return None
    if tried and notification.status == Notification.Status.FAILED and self.request.retries <= (
        settings.NOTIFICATION_MAX_ATTEMPTS
    ):
        # The row says when; the sweep would find it too, should this retry message be lost.
        wait = max(1, int((notification.next_attempt_at - timezone.now()).total_seconds()))
        raise self.retry(countdown=wait)
    return notification.status


@shared_task(acks_late=True, time_limit=120)
def notifications_resume() -> int:
    return services.notifications_resume()
