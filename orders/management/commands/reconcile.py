"""`python manage.py reconcile --merchant SLUG --provider NAME --date YYYY-MM-DD [--file PATH]`

Reconciles one settlement statement now (in this process) and prints the run's counts. Without --file the
statement is the provider's download (the sandbox generates its own). A malformed file exits non-zero with
the message naming the line; nothing of it is applied. The same statement again prints the same run.
"""

import argparse
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from merchants.models import Merchant
from orders.payments.models import Provider
from orders.reconciliation import services
from orders.reconciliation.models import ReconciliationRun

COUNTS = [
    "lines_total", "matched", "amount_mismatch", "missing_here", "healed", "missing_at_provider", "refund_mismatch",
    "duplicate",
]  # fmt: skip
TOTALS = ["trade_count", "trades_total", "refund_count", "refunds_total", "fees_total", "net_total"]


class Command(BaseCommand):
    help = "Reconcile a provider's settlement statement of one day against our payments and refunds."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="the merchant's slug")
        parser.add_argument("--provider", required=True, choices=Provider.values)
        parser.add_argument("--date", required=True, type=_date, help="the statement's day, YYYY-MM-DD")
        parser.add_argument("--file", help="the statement file; without it, the provider's download")

    def handle(self, *args, merchant, provider, date, file, **options):
        found = Merchant.objects.filter(slug=merchant).first()
        if found is None:
            raise CommandError(f"no merchant with slug {merchant!r}")
        source = ReconciliationRun.Source.COMMAND
        try:
            if file:
                try:
                    stream = open(file, "rb")  # noqa: SIM115 - closed below, after the run
                except OSError as error:
                    raise CommandError(f"cannot read {file}: {error.strerror}") from None
                with stream:
                    run = services.reconciliation_run(
                        merchant=found, provider=provider, statement_date=date, stream=stream, source=source
                    )
            else:
                run = services.reconciliation_run_download(
                    merchant=found, provider=provider, statement_date=date, source=source
                )
        except services.StatementUnavailable as error:
            raise CommandError(error.message) from None
        self._report(run)
        if run.status == ReconciliationRun.Status.FAILED:
            raise CommandError(f"statement rejected: {run.error}")
        if run.status != ReconciliationRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} is still {run.status} (another process is on it?)")

    def _report(self, run: ReconciliationRun) -> None:
        self.stdout.write(
            f"run {run.pk}: {run.merchant.slug} {run.provider} {run.statement_date:%Y-%m-%d} {run.status}"
            f" (sha256 {run.file_sha256[:12]}…)"
        )
        if run.status != ReconciliationRun.Status.SUCCEEDED:
            return
        width = max(len(name) for name in COUNTS + TOTALS)
        for name in COUNTS:
            self.stdout.write(f"  {name:<{width}}  {getattr(run, name)}")
        for name in TOTALS:
            value = getattr(run, name)
            suffix = f" {run.currency}" if name.endswith("_total") else ""
            self.stdout.write(f"  {name:<{width}}  {value}{suffix}")


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None
