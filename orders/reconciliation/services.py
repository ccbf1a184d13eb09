"""Writes for reconciliation: run a settlement statement against our books, heal, resolve.

A run is idempotent: its row is keyed by (merchant, provider, day, file SHA-256) and committed first as
*running*; the work happens in one transaction that holds the run's row lock, and ends by storing
*succeeded* (or *failed*). So the same statement again finds the finished run and changes nothing; a
worker killed half-way leaves the row *running* and rolls everything else back, and the redelivered task
(or anyone re-running the statement) takes the lock and does the whole run again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import BinaryIO
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from merchants.models import Merchant
from o2o.exceptions import DomainError
from o2o.money import minor_unit_exponent, money_from_minor, money_to_minor

from ..models import OrderEvent
from ..payments.models import PaymentConfig, PaymentNotification
from ..payments.providers.base import Notification, StatementError, StatementLine, StatementNotOffered, provider_for
from ..payments.services import payment_report_record
from .bulk import tradebill_stage
from .matching import MatchScope, statement_match
from .models import Discrepancy, ReconciliationRun
from .staging import StagedStatement, statement_stage, statement_unstage

logger = logging.getLogger(__name__)

Run, Kind, Channel = ReconciliationRun, Discrepancy.Kind, OrderEvent.Channel
Parse = Callable[[BinaryIO], Iterator[StatementLine]]

# A test-only brake (tests/reconciliation/test_worker_kill.py): while the named file exists the run waits
# between staging and matching, so a worker can be killed mid-way. Unset everywhere else.
HOLD_FILE_ENV = "O2O_RECONCILIATION_HOLD_FILE"
HOLD_MAX_SECONDS = 300


class StatementUnavailable(DomainError):
    code = "statement_unavailable"
    default_message = gettext_lazy("This provider's statement cannot be downloaded; upload the file instead.")


class NoSuchRun(DomainError):
    code = "no_such_run"


class ResolutionNoteMissing(DomainError):
    code = "resolution_note_missing"
    default_message = gettext_lazy("Say how the discrepancies were resolved.")


@dataclass(frozen=True)
class DayBounds:
    start: datetime
    end: datetime


def statement_day_bounds(*, merchant: Merchant, statement_date: date) -> DayBounds:
    """The statement's day as the merchant lives it: midnight to midnight in the merchant's time zone."""
    zone = ZoneInfo(merchant.timezone)
    return DayBounds(
        start=datetime.combine(statement_date, dtime.min, tzinfo=zone),
        end=datetime.combine(statement_date + timedelta(days=1), dtime.min, tzinfo=zone),
    )


def statement_parser(*, merchant: Merchant, provider: str) -> Parse:
    """The provider's statement parser. Parsing needs no secrets, so a merchant without an account at the
    provider can still reconcile a file."""
    return provider_for(_config(merchant, provider)).parse_statement


def statement_bulk_reader(*, merchant: Merchant, provider: str) -> tuple[str, str] | None:
    """(format, account) when the provider's statements can be staged in bulk on this database."""
    if connection.vendor != "postgresql":
        return None
    instance = provider_for(_config(merchant, provider))
    if instance.statement_format != "wechatpay_tradebill":
        return None
    return instance.statement_format, instance.statement_account()


def _config(merchant: Merchant, provider: str) -> PaymentConfig:
    return PaymentConfig.objects.filter(merchant=merchant, provider=provider).first() or PaymentConfig(
        merchant=merchant, provider=provider
    )


# --------------------------------------------------------------------------- runs


def reconciliation_run(
    *,
    merchant: Merchant,
    provider: str,
    statement_date: date,
    stream: BinaryIO,
    source: str,
    started_by: AbstractBaseUser | None = None,
    parse: Parse | None = None,
) -> ReconciliationRun:
    """Reconcile one settlement statement now and return its run (the existing one for a statement seen
    before, unchanged). A malformed statement gives a failed run naming the line, with nothing applied."""
    stream = _seekable(stream)
    run, _created = reconciliation_run_start(
        merchant=merchant, provider=provider, statement_date=statement_date, stream=stream, source=source,
        started_by=started_by,
    )  # fmt: skip
    return reconciliation_run_execute(run_id=run.pk, stream=stream, parse=parse)


def reconciliation_run_start(
    *,
    merchant: Merchant,
    provider: str,
    statement_date: date,
    stream: BinaryIO,
    source: str,
    started_by: AbstractBaseUser | None = None,
    statement_file: str = "",
) -> tuple[ReconciliationRun, bool]:
    """Find or create (committed, *running*) the run of this statement; `stream` must be seekable and is
    left at its start. Returns (run, created)."""
    sha = _sha256(stream)
    with transaction.atomic():
        # get_or_create retries the get when a concurrent start wins the insert (unique constraint).
        return Run.objects.get_or_create(
            merchant=merchant, provider=provider, statement_date=statement_date, file_sha256=sha,
            defaults={"source": source, "started_by": started_by, "statement_file": statement_file,
                      "currency": merchant.currency},
        )  # fmt: skip


def reconciliation_run_execute(*, run_id: int, stream: BinaryIO, parse: Parse | None = None) -> ReconciliationRun:
    """Do the work of a *running* run in one transaction; a finished run is returned as it is.

    Concurrent executions of one run serialise on its row lock; the second finds it finished.
    """
    with transaction.atomic():
        # Only the run's row: the merchant's stays free for everyone else during a long run.
        run = Run.objects.select_for_update(of=("self",)).select_related("merchant").filter(pk=run_id).first()
        if run is None:
            raise NoSuchRun(_("reconciliation run %(run_id)s does not exist") % {"run_id": run_id})
        if run.status != Run.Status.RUNNING:
            return run
        bulk = None
        if parse is None:
            parse = statement_parser(merchant=run.merchant, provider=run.provider)
            bulk = statement_bulk_reader(merchant=run.merchant, provider=run.provider)
        run.started_at = timezone.now()
        try:
            # A savepoint: a malformed line rolls back staging, heals and discrepancies alike, and the
            # run's failure is still stored.
            with transaction.atomic():
                staged = None
                if bulk is not None:
                    staged = tradebill_stage(run_id=run.pk, stream=stream, merchant_no=bulk[1])
                if staged is None:
                    # Line by line: the reader accepts the file or names the line that is wrong.
                    staged = statement_stage(run_id=run.pk, lines=parse(stream))
                _reconcile(run=run, staged=staged)
                run.status = Run.Status.SUCCEEDED
        except StatementError as error:
            run.status = Run.Status.FAILED
            run.error = error.message
            run.error_line_no = error.line_no
            logger.warning("reconciliation run %s failed: %s", run.pk, error.message)
        run.finished_at = timezone.now()
        run.save()
    logger.info(
        "reconciliation run %s %s: %s lines, %s matched, %s discrepancies, %s healed",
        run.pk, run.status, run.lines_total, run.matched, run.discrepancy_count, run.healed,
    )  # fmt: skip
    return run


def reconciliation_run_download(
    *, merchant: Merchant, provider: str, statement_date: date, source: str, started_by: AbstractBaseUser | None = None
) -> ReconciliationRun:
    """Fetch the provider's statement of `statement_date` and reconcile it (the provider keeps its bills:
    a lost run downloads it again)."""
    with _spooled(statement_download(merchant=merchant, provider=provider, statement_date=statement_date)) as stream:
        return reconciliation_run(
            merchant=merchant, provider=provider, statement_date=statement_date, stream=stream, source=source,
            started_by=started_by,
        )  # fmt: skip


def reconciliation_run_upload(
    *,
    merchant: Merchant,
    provider: str,
    statement_date: date,
    upload: BinaryIO,
    started_by: AbstractBaseUser | None = None,
) -> tuple[ReconciliationRun, bool]:
    """Keep an uploaded statement in storage and queue its run for a worker (after commit).

    Returns (run, queued): a statement already reconciled is not queued again.
    """
    from .tasks import reconciliation_run_statement

    stream = _seekable(upload)
    sha = _sha256(stream)
    name = f"reconciliation/{merchant.pk}/{provider}/{statement_date:%Y-%m-%d}-{sha}.statement"
    if not default_storage.exists(name):
        name = default_storage.save(name, File(stream))
    stream.seek(0)
    run, _created = reconciliation_run_start(
        merchant=merchant, provider=provider, statement_date=statement_date, stream=stream,
        source=Run.Source.UPLOAD, started_by=started_by, statement_file=name,
    )  # fmt: skip
    if run.status == Run.Status.FAILED and run.error_line_no is None:
        # Failed for want of its file (not a malformed line): the file is here again, so run it again.
        Run.objects.filter(pk=run.pk, status=Run.Status.FAILED).update(
            status=Run.Status.RUNNING, error="", finished_at=None, statement_file=name
        )
        run.refresh_from_db()
    if run.status != Run.Status.RUNNING:
        return run, False
    if run.statement_file != name:
        Run.objects.filter(pk=run.pk).update(statement_file=name)
    transaction.on_commit(lambda: reconciliation_run_statement.delay(run.pk))
    return run, True


def reconciliation_run_stored(*, run_id: int) -> ReconciliationRun:
    """Execute a run from its statement in storage (an upload or a download): what the worker does."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise NoSuchRun(_("reconciliation run %(run_id)s does not exist") % {"run_id": run_id})
    if run.status != Run.Status.RUNNING:
        return run
    if not run.statement_file or not default_storage.exists(run.statement_file):
        # Nothing to reconcile from, ever: say so on the run instead of failing the task every day.
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.FAILED, error=_("The uploaded statement file is gone; upload it again."),
            finished_at=timezone.now(),
        )  # fmt: skip
        run.refresh_from_db()
        return run
    with default_storage.open(run.statement_file, "rb") as stream:
        return reconciliation_run_execute(run_id=run.pk, stream=stream)


def statement_download(*, merchant: Merchant, provider: str, statement_date: date) -> BinaryIO | bytes:
    """The provider's statement of `statement_date` (the sandbox generates its own from its ledger).
    Raises StatementUnavailable when the provider cannot give one."""
    try:
        instance = provider_for(_config(merchant, provider))
    except (ImportError, KeyError):
        raise StatementUnavailable(_("Unknown provider %(provider)s.") % {"provider": provider}) from None
    try:
        return instance.download_statement(statement_date)
    except StatementNotOffered:
        raise StatementUnavailable(
            _("%(provider)s statements cannot be downloaded; pass the file (--file) or upload it.")
            % {"provider": provider}
        ) from None


def reconciliation_runs_stale(*, older_than: timedelta = timedelta(minutes=30)) -> list[int]:
    """Runs still *running* long after they started, with their statement in storage: a lost message
    or a crash. Their ids, for the daily sweep to queue again (executing a run twice is harmless)."""
    cutoff = timezone.now() - older_than
    return list(
        Run.objects.filter(status=Run.Status.RUNNING, created_at__lt=cutoff).exclude(statement_file="")
        .values_list("pk", flat=True)[:100]
    )  # fmt: skip


# --------------------------------------------------------------------------- matching


def _reconcile(*, run: ReconciliationRun, staged: StagedStatement) -> None:
    merchant = run.merchant
    logger.info("reconciliation run %s: %s statement lines staged (pid %s)", run.pk, staged.lines, os.getpid())
    _hold_for_tests()
    bounds = statement_day_bounds(merchant=merchant, statement_date=run.statement_date)
    scope = MatchScope(
        run_id=run.pk, merchant_id=merchant.pk, provider=run.provider, start=bounds.start, end=bounds.end,
        scale=10 ** minor_unit_exponent(merchant.currency), now=timezone.now(),
    )  # fmt: skip
    statement_match(stage=staged.table, scope=scope)
    statement_unstage(staged)
    _heal(run=run)
    _count(run=run, staged=staged)


def _heal(*, run: ReconciliationRun) -> None:
    """Apply each trade the provider was paid for and we never heard of (classified *healed* in SQL: ours,
    still awaiting money, same amount and currency) through the notification path, as a report from the
    statement. What that path refuses to pay (the order was cancelled or paid by another attempt
    meanwhile: the payment goes to review) becomes an open *missing here* for staff."""
    # The provider's time of the trade: a healed payment belongs to the statement's day, not to the day we
    # happened to reconcile (or the next day's run would call it missing at the provider).
    day_start = statement_day_bounds(merchant=run.merchant, statement_date=run.statement_date).start
    # Ids first: the loop below updates and deletes rows of the table it would otherwise be reading.
    ids = list(Discrepancy.objects.filter(run=run, kind=Kind.HEALED).values_list("pk", flat=True))
    for discrepancy in _in_batches(Discrepancy.objects.select_related("payment"), ids):
        payment = discrepancy.payment
        report = Notification(
            out_trade_no=payment.out_trade_no,
            provider_trade_no=discrepancy.provider_trade_no,
            amount_minor=money_to_minor(discrepancy.their_amount, payment.currency),
            currency=payment.currency,
            paid=True,
            state="STATEMENT",
            paid_at=discrepancy.occurred_at or day_start,
        )
        note = payment_report_record(
            payment=payment, report=report, source=PaymentNotification.Source.STATEMENT, channel=Channel.WORKER
        )
        if note.status == PaymentNotification.Status.DUPLICATE:
            # A notification got there between our read and its lock: a plain match now, not a heal.
            Discrepancy.objects.filter(pk=discrepancy.pk).delete()
        elif note.status != PaymentNotification.Status.APPLIED:
            Discrepancy.objects.filter(pk=discrepancy.pk).update(
                kind=Kind.MISSING_HERE, status=Discrepancy.Status.OPEN, detail=(note.error or note.status)[:255],
                resolution_note="", resolved_at=None,
            )  # fmt: skip


def _in_batches(queryset, ids: list[int], size: int = 500):
    for first in range(0, len(ids), size):
        yield from queryset.filter(pk__in=ids[first : first + size]).order_by("pk")


def _count(*, run: ReconciliationRun, staged: StagedStatement) -> None:
    currency = run.merchant.currency
    by_kind = {kind: 0 for kind in Kind.values}
    from_lines = 0
    counts = Discrepancy.objects.filter(run=run).values("kind").annotate(n=Count("pk"), lines=Count("line_no"))
    for row in counts.order_by():
        by_kind[row["kind"]] = row["n"]
        from_lines += row["lines"]
    run.lines_total = staged.lines
    run.matched = staged.lines - from_lines
    for kind, count in by_kind.items():
        setattr(run, kind, count)
    run.currency = currency
    run.trade_count, run.refund_count = staged.trade_count, staged.refund_count
    run.trades_total = money_from_minor(staged.trades_minor, currency)
    run.refunds_total = money_from_minor(staged.refunds_minor, currency)
    run.fees_total = money_from_minor(staged.fees_minor, currency)
    run.net_total = money_from_minor(staged.trades_minor - staged.refunds_minor - staged.fees_minor, currency)


def _hold_for_tests() -> None:
    path = os.environ.get(HOLD_FILE_ENV)
    if not path:
        return
    deadline = time.monotonic() + HOLD_MAX_SECONDS
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


# --------------------------------------------------------------------------- resolving


def discrepancies_resolve(*, discrepancies, user: AbstractBaseUser, note: str) -> int:
    """Resolve the open ones among `discrepancies` (a queryset the caller scoped) with `note`; returns how
    many this call resolved. One conditional UPDATE: two people resolving at once resolve each row once."""
    note = note.strip()
    if not note:
        raise ResolutionNoteMissing()
    return discrepancies.filter(status=Discrepancy.Status.OPEN).update(
        status=Discrepancy.Status.RESOLVED, resolution_note=note, resolved_by=user, resolved_at=timezone.now()
    )


# --------------------------------------------------------------------------- streams


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def _seekable(stream: BinaryIO) -> BinaryIO:
    """The statement is read twice (its hash, then its lines): a pipe is copied to a temporary file first."""
    try:
        if stream.seekable():
            return stream
    except (AttributeError, ValueError):
        pass
    spooled = tempfile.TemporaryFile()
    shutil.copyfileobj(stream, spooled, 1024 * 1024)
    spooled.seek(0)
    return spooled


@contextmanager
def _spooled(data: BinaryIO | bytes) -> Iterator[BinaryIO]:
    """Bytes or a stream as a seekable temporary file, closed on exit."""
    with tempfile.TemporaryFile() as file:
        if isinstance(data, bytes | bytearray):
            file.write(data)
        else:
            shutil.copyfileobj(data, file, 1024 * 1024)
        file.seek(0)
        yield file
