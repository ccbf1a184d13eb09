"""The REST API's root: routes of every app under /api/v1/, and the token endpoint."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import routers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from merchants.api import ProductViewSet, StoreStockViewSet, StoreViewSet

router = routers.DefaultRouter()
router.register("stores", StoreViewSet, basename="store")
router.register("products", ProductViewSet, basename="product")
router.register("stock", StoreStockViewSet, basename="stock")


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
        token, _created = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
