"""One interface for telling a customer something, whatever the channel.

`backend_for(channel)` returns the backend the settings choose (NOTIFICATIONS_SMS_BACKEND,
NOTIFICATIONS_EMAIL_BACKEND, read from the environment in o2o/settings.py): e-mail through Django's
mail framework (EMAIL_BACKEND says console, SMTP, ...), SMS through an HTTP gateway or, in
development, the console. A backend sends or raises DeliveryFailed; it never decides about retries.
"""

import json
import logging
import sys
import urllib.error
import urllib.request
from typing import ClassVar

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The message did not get through (the gateway said no, timed out, or the mail server refused)."""


class NotificationBackend:
    channel: ClassVar[str] = ""

    def send(self, *, to: str, subject: str, body: str, reference: str) -> str:
        """Deliver `body` to `to`; return the provider's message id (or `reference`). Raise DeliveryFailed."""
        raise NotImplementedError


class EmailBackend(NotificationBackend):
    """E-mail through Django's mail framework: whatever EMAIL_BACKEND is (console in development)."""

    channel = "email"

    def send(self, *, to: str, subject: str, body: str, reference: str) -> str:
        message = EmailMessage(
            subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to],
            headers={"X-O2O-Reference": reference},
        )
        try:
            message.send(fail_silently=False)
        except Exception as error:  # noqa: BLE001 - SMTP, socket and backend errors all mean "not sent"
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
        return reference


class ConsoleSMSBackend(NotificationBackend):
    """Development: the SMS is printed where the worker logs, nothing leaves the machine."""

    channel = "sms"

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout  # read now, not at import: the worker's own stdout

    def send(self, *, to: str, subject: str, body: str, reference: str) -> str:
        self.stream.write(f"SMS to {to} [{reference}]\n{body}\n{'-' * 40}\n")
        self.stream.flush()
        return reference


class HttpSMSBackend(NotificationBackend):
    """A JSON-over-HTTPS SMS gateway (most Chinese SMS providers offer one, or sit behind a relay):

        POST SMS_GATEWAY_URL  Authorization: Bearer SMS_GATEWAY_TOKEN
        {"to": "+86138…", "text": "…", "sender": SMS_SENDER, "reference": "o2o-notification-42"}

    Any 2xx is accepted (its JSON "id", if any, is kept); anything else, or no answer within
    SMS_GATEWAY_TIMEOUT seconds, is DeliveryFailed. `reference` is also the Idempotency-Key header:
    a gateway that honours it never delivers a resend twice.
    """

    channel = "sms"

    def send(self, *, to: str, subject: str, body: str, reference: str) -> str:
        payload = {"to": to, "text": body, "sender": settings.SMS_SENDER, "reference": reference}
        request = urllib.request.Request(  # noqa: S310 - settings accept http(s) URLs only
            settings.SMS_GATEWAY_URL, data=json.dumps(payload).encode(), method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}",
                "Idempotency-Key": reference,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_GATEWAY_TIMEOUT) as answer:  # noqa: S310
                raw = answer.read(65536)
        except urllib.error.HTTPError as error:
            detail = error.read(500).decode(errors="replace")
            raise DeliveryFailed(f"gateway answered HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise DeliveryFailed(f"gateway unreachable: {getattr(error, 'reason', error)}") from error
        try:
            answer_id = json.loads(raw or b"{}").get("id")
        except (ValueError, AttributeError):
            answer_id = None
        return str(answer_id or reference)[:100]


def backend_for(channel: str) -> NotificationBackend | None:
    """The configured backend of `channel`, or None when the channel is off."""
    path = {"sms": settings.NOTIFICATIONS_SMS_BACKEND, "email": settings.NOTIFICATIONS_EMAIL_BACKEND}[channel]
    if not path:
        return None
    return import_string(path)()
