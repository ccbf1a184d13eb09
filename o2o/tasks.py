"""Platform housekeeping that every deployment needs; domain sweeps live in their apps."""

from celery import shared_task

from . import housekeeping


@shared_task(acks_late=True, time_limit=300)
def sessions_clear_expired() -> int:
    return housekeeping.sessions_clear_expired()


@shared_task(acks_late=True, time_limit=300)
def access_attempts_prune() -> int:
    return housekeeping.access_attempts_prune()
