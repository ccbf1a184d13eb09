"""Reconciliation tasks: thin, take ids, safe to run twice (a finished run is returned unchanged).

Late acks and reject-on-worker-lost: a worker that dies mid-run (its transaction rolls back) leaves the
message to be delivered again, and the rerun does the whole run once.
"""

import logging
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from celery import shared_task
from django.utils import timezone

from merchants.models import Merchant

from ..payments.models import PaymentConfig
from ..payments.providers.base import ProviderError
from . import services

logger = logging.getLogger(__name__)

# A million-line statement takes under a minute; the hard limit only stops a run that is stuck. It stays
# below the Redis visibility timeout (an hour), after which an unacknowledged message is delivered again.
RUN_TIME_LIMIT = 1800


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=RUN_TIME_LIMIT)
def reconciliation_run_statement(run_id: int) -> str:
    """Reconcile an uploaded statement kept in storage (queued by the admin upload)."""
    return services.reconciliation_run_stored(run_id=run_id).status


@shared_task(
    acks_late=True, reject_on_worker_lost=True, time_limit=RUN_TIME_LIMIT,
    # The provider's download failing (network, not ready yet) is worth a few more tries that day.
    autoretry_for=(ProviderError,), retry_backoff=300, retry_backoff_max=3600, max_retries=6,
)  # fmt: skip
def reconciliation_daily(merchant_id: int, provider: str, statement_date: str | None = None) -> str:
    """Download and reconcile one merchant's statement at one provider for `statement_date` (ISO; yesterday
    in the merchant's time zone when omitted). The same statement twice is one run."""
    merchant = Merchant.objects.get(pk=merchant_id)
    day = date.fromisoformat(statement_date) if statement_date else _yesterday(merchant)
    try:
        run = services.reconciliation_run_download(
            merchant=merchant, provider=provider, statement_date=day, source=services.Run.Source.DOWNLOAD
        )
    except services.StatementUnavailable as error:
        logger.warning("reconciliation of %s at %s on %s skipped: %s", merchant.slug, provider, day, error)
        return "unavailable"
    return run.status


@shared_task(acks_late=True, time_limit=300)
def reconciliation_daily_all() -> int:
    """Beat, once a day: one reconciliation_daily per active provider account, and runs stuck *running*
    (a lost message, a crash) queued again. Returns how many tasks it queued."""
    accounts = PaymentConfig.objects.filter(is_active=True, merchant__is_active=True).values_list(
        "merchant_id", "provider"
    )
    queued = 0
    for merchant_id, provider in accounts:
        reconciliation_daily.delay(merchant_id, provider)
        queued += 1
    for run_id in services.reconciliation_runs_stale(older_than=timedelta(minutes=30)):
        reconciliation_run_statement.delay(run_id)
        queued += 1
    return queued


def _yesterday(merchant: Merchant) -> date:
    return timezone.now().astimezone(ZoneInfo(merchant.timezone)).date() - timedelta(days=1)
