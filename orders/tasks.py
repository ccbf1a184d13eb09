"""Periodic sweeps: thin wrappers, set-based and idempotent, so a missed or repeated run heals itself."""

from celery import shared_task

from . import fulfilment, scan_buffer, services
from .payments import tasks as payment_tasks  # noqa: F401 - registers the payment tasks with Celery


@shared_task(acks_late=True, time_limit=300)
def orders_cancel_unpaid() -> int:
    return services.orders_cancel_unpaid()


@shared_task(acks_late=True, time_limit=120)
def promotions_advance() -> dict[str, int]:
    return services.promotions_advance()


@shared_task(acks_late=True, time_limit=600)
def pickups_expire_overdue() -> dict[str, int]:
    return fulfilment.pickups_expire_overdue()


@shared_task(acks_late=True, time_limit=60)
def scans_flush() -> int:
    return scan_buffer.scans_flush()


@shared_task(acks_late=True, time_limit=300)
def pickup_idempotency_keys_prune() -> int:
    from .pickups.services import pickup_idempotency_keys_prune as prune

    return prune()


from .reconciliation import tasks as _reconciliation_tasks  # noqa: E402, F401 - registers its tasks
