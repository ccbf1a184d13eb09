"""Why a voucher cannot be handed over, each with a stable `code` for POS terminals and an HTTP status.

A code of another merchant is `UnknownCode`, exactly like one that does not exist: a cashier never
learns that another merchant's voucher exists.
"""

from datetime import datetime

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, status

from o2o.exceptions import DomainError


def _iso(moment: datetime | None) -> str:
    """As the API writes every other time (DRF's format, in the site's time zone)."""
    return serializers.DateTimeField().to_representation(moment) if moment else ""


class PickupError(DomainError):
    code = "pickup_error"
    # The name of the cashier page's screen for this outcome (templates/cashier/_outcome.html).
    screen = "error"


class UnknownCode(PickupError):
    code = "unknown_code"
    http_status = status.HTTP_404_NOT_FOUND
    default_message = _("No voucher has this code. Check it and try again.")
    screen = "unknown"


class AlreadyRedeemed(PickupError):
    code = "already_redeemed"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("Already handed over. Do not hand it over again.")
    screen = "already_redeemed"

    def __init__(self, *, redeemed_at: datetime | None, by: str, store: str, store_code: str = "") -> None:
        super().__init__(
            None, redeemed_at=_iso(redeemed_at), by=by, store=store,
            store_code=store_code,
        )
        self.redeemed_at, self.by, self.store = redeemed_at, by, store


class WrongStore(PickupError):
    code = "wrong_store"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = _("This voucher is for pickup at another store.")
    screen = "wrong_store"

    def __init__(self, *, belongs_to: str, belongs_to_code: str) -> None:
        super().__init__(None, belongs_to=belongs_to, belongs_to_code=belongs_to_code)
        self.belongs_to, self.belongs_to_code = belongs_to, belongs_to_code


class NotPaid(PickupError):
    code = "not_paid"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("Not paid. Do not hand anything over.")
    screen = "not_paid"


class Refunded(PickupError):
    code = "refunded"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("Refunded. Do not hand anything over.")
    screen = "refunded"


class Expired(PickupError):
    code = "expired"
    http_status = status.HTTP_410_GONE
    default_message = _("Expired: the pickup deadline has passed. Do not hand anything over.")
    screen = "expired"

    def __init__(self, *, deadline: datetime | None) -> None:
        super().__init__(None, deadline=_iso(deadline))
        self.deadline = deadline


class Cancelled(PickupError):
    code = "cancelled"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("Cancelled. Do not hand anything over.")
    screen = "cancelled"


class NotRedeemable(PickupError):
    """A state no pickup order should be in (shipped, delivered): refuse rather than guess."""

    code = "not_redeemable"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("This order cannot be handed over at a counter.")
    screen = "not_redeemable"


class LinesError(PickupError):
    """What a cashier asked to hand over does not fit the order; nothing was handed over."""

    screen = "lines"


class UnknownLine(LinesError):
    code = "unknown_line"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = _("This order has no such line.")

    def __init__(self, *, item: object, name: str = "", reason: str = "") -> None:
        if reason == "quantity":
            message = _("%(name)s: say how many, once, as a whole number (0 or more).") % {"name": name}
        else:
            message = _("Line %(item)s is not a line of this order.") % {"item": item}
        super().__init__(message, item=item, **({"name": name} if name else {}))


class TooManyUnits(LinesError):
    code = "too_many_units"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("More units asked for than are left to hand over.")

    def __init__(self, *, item: int, name: str, asked: int, left: int) -> None:
        super().__init__(
            _("%(name)s: %(asked)d asked for, only %(left)d left to hand over.")
            % {"name": name, "asked": asked, "left": left},
            item=item, name=name, asked=asked, left=left,
        )


class NothingToHandOver(LinesError):
    code = "nothing_to_hand_over"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = _("Choose at least one unit to hand over.")


class StoreNotAllowed(PickupError):
    code = "store_not_allowed"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = _("You do not verify pickups at this store.")
    screen = "forbidden"


class StoreRequired(PickupError):
    code = "store_required"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = _("Say at which store you are (you serve more than one).")
    screen = "choose_store"


class RateLimited(PickupError):
    code = "rate_limited"
    http_status = status.HTTP_429_TOO_MANY_REQUESTS
    default_message = _("Too many unknown codes. Wait a moment, then try again.")
    screen = "rate_limited"

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(None, retry_after=retry_after)
        self.retry_after = retry_after


class IdempotencyKeyReused(PickupError):
    code = "idempotency_key_reused"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = _("This Idempotency-Key was already used for another voucher code.")


class VoidRefused(DomainError):
    code = "void_refused"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("This redemption cannot be voided.")


class VoidWindowClosed(VoidRefused):
    code = "void_window_closed"
    default_message = _("Too late to void: the window has closed.")


class AlreadyVoided(VoidRefused):
    code = "already_voided"
    default_message = _("This redemption was already voided.")


class NotAManager(VoidRefused):
    code = "not_a_manager"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = _("Only a manager of this merchant may void a redemption.")
