"""What can go wrong when a customer orders; each says so in the customer's language."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from o2o.exceptions import DomainError


class OrderError(DomainError):
    code = "order_error"


class PromotionNotOnSale(OrderError):
    code = "not_on_sale"
    http_status = status.HTTP_410_GONE
    default_message = _("This offer is not on sale right now.")


class SoldOut(OrderError):
    code = "sold_out"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("Sorry, there is not enough left of this offer.")


class OverMemberLimit(OrderError):
    code = "over_limit"
    default_message = _("That is more than this offer allows per customer.")


class FulfilmentNotAllowed(OrderError):
    code = "fulfilment_not_allowed"
    default_message = _("This offer cannot be fulfilled that way.")


class OrderNotPayable(OrderError):
    code = "not_payable"
    http_status = status.HTTP_409_CONFLICT
    default_message = _("This order can no longer be paid.")


class PromotionNotReady(DomainError):
    code = "promotion_not_ready"
