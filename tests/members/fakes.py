"""Notification backends for tests: one that records what it was asked to send, one that fails."""

import threading

from members.notifications.backends import DeliveryFailed, NotificationBackend

SENT: list[dict] = []
_lock = threading.Lock()


class RecordingSMS(NotificationBackend):
    channel = "sms"

    def send(self, *, to: str, subject: str, body: str, reference: str) -> str:
        with _lock:
            SENT.append({"to": to, "body": body, "reference": reference})
        return f"gw-{len(SENT)}"


class FailingSMS(NotificationBackend):
    channel = "sms"
    calls = 0

    def send(self, *, to: str, subject: str, body: str, reference: str) -> str:
        FailingSMS.calls += 1
        raise DeliveryFailed("gateway answered HTTP 503: try later")
