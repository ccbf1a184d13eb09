"""The REST API's root: routes of every app under /api/v1/, and the token endpoint."""

from axes.helpers import get_client_ip_address
from axes.utils import reset as axes_reset
from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import routers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from merchants.api import ProductViewSet, StoreStockViewSet, StoreViewSet
from orders.payments.api import PaymentConfigViewSet, PaymentViewSet

router = routers.DefaultRouter()
router.register("stores", StoreViewSet, basename="store")
router.register("products", ProductViewSet, basename="product")
router.register("stock", StoreStockViewSet, basename="stock")
router.register("payments", PaymentViewSet, basename="payment")
router.register("payment-accounts", PaymentConfigViewSet, basename="payment-account")


class TokenView(ObtainAuthToken):
    """Exchange username and password for an API token; locked out after repeated failures."""

    @extend_schema(operation_id="auth_token_create", tags=["auth"])
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # django-axes flags the request when the username/IP pair is locked out.
            if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
                return Response(
                    {"code": "locked_out", "detail": _("Too many failed attempts; try again later.")},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                )
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        user = serializer.validated_data["user"]
        if settings.AXES_RESET_ON_SUCCESS:
            # Issuing a token is not a login(): Django sends no user_logged_in, so django-axes never
            # resets this pair's failures and a terminal that once mistyped would stay one typo
            # closer to a lockout for the whole cool-off. Reset here as the admin login does.
            axes_reset(ip=get_client_ip_address(request), username=user.get_username())
        token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
