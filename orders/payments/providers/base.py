"""One interface for every payment provider.

A provider turns our Payment into what the customer's phone needs to pay, verifies and parses
the provider's notifications, asks the provider about a payment, refunds, and reads the
provider's daily settlement statement. Amounts cross this boundary in integer minor units
(fen), converted with o2o.money; nothing here writes to the database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, BinaryIO

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from o2o.exceptions import DomainError

if TYPE_CHECKING:
    from ..models import Payment, PaymentConfig, Refund


class NotificationRejected(DomainError):
    """Forged, tampered, stale or malformed: answered 400 and logged; changes nothing."""

    code = "notification_rejected"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = _("The notification could not be verified.")


class NotificationIgnored(Exception):  # noqa: N818 - an outcome, not an error
    """A verified notification that carries nothing to apply: Alipay's WAIT_BUYER_PAY or TRADE_CLOSED, a
    WeChat Pay or sandbox trade state other than SUCCESS. It is kept and answered as the provider expects
    (so it stops sending it), and nothing else changes."""

    def __init__(self, report: Notification) -> None:
        self.report = report
        super().__init__(f"the provider says {report.state}: nothing to apply")


class StatementError(DomainError):
    """A settlement statement that cannot be read; nothing of it is applied."""

    code = "statement_error"

    def __init__(self, message: str, *, line_no: int | None = None) -> None:
        self.line_no = line_no
        where = _("line %(line_no)s: ") % {"line_no": line_no} if line_no is not None else ""
        super().__init__(f"{where}{message}", line_no=line_no if line_no is not None else "")


class ProviderError(DomainError):
    """The provider answered with an error or could not be reached."""

    code = "provider_error"
    http_status = status.HTTP_502_BAD_GATEWAY


class StatementNotOffered(ProviderError):
    """This provider gives no statement to download: the file has to be uploaded."""

    code = "statement_not_offered"


@dataclass(frozen=True)
class Checkout:
    """What the customer's phone does next: open `url` (a pay page or deep link), or show `qr_data`."""

    url: str = ""
    qr_data: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """A verified notification (or query answer) about one payment, in the provider's own terms."""

    out_trade_no: str
    provider_trade_no: str
    amount_minor: int
    currency: str
    paid: bool  # the provider says the money is ours
    state: str  # the provider's word for it (TRADE_SUCCESS, SUCCESS, ...), for the audit trail
    paid_at: datetime | None = None


@dataclass(frozen=True)
class RefundResult:
    """The provider's answer to a refund: succeeded, failed (with why), or `pending`: accepted but not final
    (WeChat Pay's PROCESSING). A pending refund stays pending here; the refunds-resume sweep asks again
    with the same refund number, which the provider answers with the outcome, never a second refund."""

    provider_refund_no: str
    succeeded: bool
    failure: str = ""
    pending: bool = False


@dataclass(frozen=True)
class StatementLine:
    """One transaction of a settlement statement. `kind` is "trade" or "refund".

    Amounts and fees are in minor units and never negative: the kind says the direction. A trade's
    fee is what the provider charged on it; a refund's fee is what the provider handed back with it
    (WeChat Pay writes it negative, Alipay in a column of its own). Every parser gives fees this way,
    so a day's fees are the trades' fees less the refunds' (reconciliation's staging sums them so).
    """

    line_no: int
    kind: str
    out_trade_no: str
    provider_trade_no: str
    amount_minor: int
    fee_minor: int
    occurred_at: datetime | None
    out_refund_no: str = ""
    currency: str = "CNY"


@dataclass(frozen=True)
class NotifyAnswer:
    """What the provider expects back, so it stops retrying (or retries)."""

    status: int
    body: str
    content_type: str = "text/plain"


class PaymentProvider(ABC):
    name: str
    # The statement's file format, for readers that work on the format rather than line by line
    # (reconciliation stages WeChat Pay trade bills in bulk on PostgreSQL); "" for none.
    statement_format: str = ""

    def __init__(self, config: PaymentConfig) -> None:
        self.config = config

    @abstractmethod
    def checkout(
        self, payment: Payment, *, notify_url: str, return_url: str, client_ip: str = "", openid: str = ""
    ) -> Checkout:
        """Create the payment at the provider; what the customer's phone does next. `client_ip` (the
        customer's, for WeChat Pay H5 in a phone browser) and `openid` (the payer inside WeChat, for
        JSAPI) choose the flow where the provider has several; providers with one flow ignore them."""

    @abstractmethod
    def verify_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        """Check the signature and the fields; raise NotificationRejected if anything is off, and
        NotificationIgnored (via `paid_or_ignored`) for a genuine one that says the money is not ours."""

    @abstractmethod
    def notify_answer(self, *, accepted: bool) -> NotifyAnswer: ...

    @abstractmethod
    def query(self, payment: Payment) -> Notification | None:
        """Ask the provider what became of `payment`; None if it does not know it."""

    @abstractmethod
    def refund(self, refund: Refund) -> RefundResult: ...

    @abstractmethod
    def parse_statement(self, stream: BinaryIO) -> Iterator[StatementLine]:
        """Read a settlement statement as a stream (memory does not grow with the file); raise
        StatementError naming the line for anything malformed."""

    def download_statement(self, statement_date: date) -> BinaryIO:
        """The provider's settlement statement of `statement_date`, as a stream parse_statement reads.
        Raises StatementNotOffered when the provider has none to download, ProviderError when it fails."""
        raise StatementNotOffered(
            _("%(name)s statements cannot be downloaded; upload the file instead.") % {"name": self.name}
        )

    def statement_account(self) -> str:
        """The account number every row of this merchant's statement carries ("": not checked)."""
        return ""


def paid_or_ignored(report: Notification) -> Notification:
    """A verified notification worth applying, or NotificationIgnored for one that says nothing was paid."""
    if not report.paid:
        raise NotificationIgnored(report)
    return report


def provider_for(config: PaymentConfig) -> PaymentProvider:
    from . import alipay, sandbox, wechatpay

    classes = {
        "sandbox": sandbox.SandboxProvider,
        "alipay": alipay.AlipayProvider,
        "wechatpay": wechatpay.WechatPayProvider,
    }
    return classes[config.provider](config)
