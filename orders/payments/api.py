"""Payments in the REST API: the providers' notify URL, and payments, refunds and provider accounts
for staff. No secret of a provider account is ever in an answer."""

from __future__ import annotations

from decimal import Decimal

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.tenancy import ANALYST, MANAGER, IsMerchantStaff, TenantViewSetMixin, role_name_of

from ..models import OrderEvent
from . import selectors, services
from .models import Payment, PaymentConfig, PaymentNotification, Refund

# --------------------------------------------------------------------------- the notify URL


class _AnyAccept(BaseContentNegotiation):
    """Providers send whatever Accept header they like; the answer's format is theirs, not negotiated."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PaymentNotifyView(APIView):
    """A provider's asynchronous notification about a payment (no authentication: the signature is)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    content_negotiation_class = _AnyAccept

    @extend_schema(
        operation_id="payments_notify",
        tags=["payments"],
        auth=[],
        request={"application/json": OpenApiTypes.OBJECT, "application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses={
            200: OpenApiResponse(OpenApiTypes.STR, description="Stored, then applied, duplicate or deferred."),
            400: OpenApiResponse(OpenApiTypes.STR, description="Forged, tampered, stale or malformed."),
            404: OpenApiResponse(description="No such provider, or no account of it for that merchant."),
        },
    )
    def post(self, request, provider: str, merchant_slug: str):
        config = selectors.payment_config_for_notify(provider=provider, merchant_slug=merchant_slug)
        if config is None:
            raise Http404
        # The raw bytes: signatures are over the body exactly as sent (DRF never parsed it here).
        answer, notification = services.payment_notify(
            config=config, body=request.body, headers=request.headers, remote_addr=request.META.get("REMOTE_ADDR", "")
        )
        code = answer.status
        if notification.status == PaymentNotification.Status.REJECTED and code < 400:
            code = status.HTTP_400_BAD_REQUEST
        return HttpResponse(answer.body, status=code, content_type=answer.content_type)


# --------------------------------------------------------------------------- staff


class PaymentReaders(IsMerchantStaff):
    """Managers and analysts read payments; only managers (and platform superusers) refund."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        role = role_name_of(request.user)
        if request.user.is_superuser:
            return True
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return role in (MANAGER, ANALYST)
        return role == MANAGER


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "out_refund_no", "provider_refund_no", "amount", "reason", "status", "failure", "created_at",
                  "completed_at"]  # fmt: skip
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id", "order", "provider", "out_trade_no", "provider_trade_no", "amount", "currency", "status",
            "refunded_amount", "review_reason", "created_at", "paid_at", "refunds",
        ]
        read_only_fields = fields


class RefundRequestSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False,
        help_text="Leave out to refund all that is left.",
    )
    reason = serializers.CharField(max_length=255)


class PaymentViewSet(TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The merchant's payments with their refunds; managers refund through `refunds`."""

    queryset = Payment.objects.prefetch_related("refunds").order_by("-created_at", "-id")
    serializer_class = PaymentSerializer
    permission_classes = [PaymentReaders]
    filterset_fields = ["status", "provider"]
    search_fields = ["=out_trade_no", "=provider_trade_no"]
    ordering_fields = ["created_at", "paid_at", "amount"]

    @extend_schema(request=RefundRequestSerializer, responses={201: RefundSerializer})
    @action(detail=True, methods=["post"])
    def refunds(self, request, pk=None):
        """Refund part or all of what is left of this payment, through the provider."""
        payment = self.get_object()
        data = RefundRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = services.refund_create(
            payment=payment, amount=data.validated_data.get("amount"), reason=data.validated_data["reason"],
            requested_by=request.user, channel=OrderEvent.Channel.API,
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class PaymentConfigSerializer(serializers.ModelSerializer):
    """A provider account as staff may see it: whether the secrets are set, never what they are."""

    has_signing_secret = serializers.SerializerMethodField()
    has_api_v3_key = serializers.SerializerMethodField()

    class Meta:
        model = PaymentConfig
        fields = ["id", "provider", "is_active", "app_id", "merchant_no", "merchant_cert_serial",
                  "has_signing_secret", "has_api_v3_key", "updated_at"]  # fmt: skip
        read_only_fields = fields

    def get_has_signing_secret(self, obj: PaymentConfig) -> bool:
        return bool(obj.signing_secret)

    def get_has_api_v3_key(self, obj: PaymentConfig) -> bool:
        return bool(obj.api_v3_key)


class ManagersOnly(IsMerchantStaff):
    def has_permission(self, request, view):
        return super().has_permission(request, view) and (
            request.user.is_superuser or role_name_of(request.user) == MANAGER
        )


class PaymentConfigViewSet(
    TenantViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The merchant's provider accounts (read-only here; set them up in the admin)."""

    queryset = PaymentConfig.objects.order_by("provider")
    serializer_class = PaymentConfigSerializer
    permission_classes = [ManagersOnly]
    filterset_fields = ["provider", "is_active"]
    search_fields: list = []
    ordering_fields = ["provider"]
