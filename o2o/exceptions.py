"""Domain errors and their translation at the edges (API answers, admin messages)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.response import Response


class DomainError(Exception):
    """A rule of the domain said no. `code` is stable for API clients; `message` is for people."""

    code = "domain_error"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = _("The request could not be carried out.")

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = str(message or self.default_message)
        self.details = details
        super().__init__(self.message)


class NoMerchantScope(DomainError):
    code = "no_merchant"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = _("Your account does not belong to a merchant.")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    # Imported here: rest_framework.views reads DEFAULT_PERMISSION_CLASSES, which live in tenancy.
    from rest_framework.views import exception_handler

    if isinstance(exc, DomainError):
        return Response(
            {"code": exc.code, "detail": exc.message, **{k: str(v) for k, v in exc.details.items()}},
            status=exc.http_status,
        )
    return exception_handler(exc, context)
