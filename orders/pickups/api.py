"""Pickup lookup and redemption for POS terminals: GET /api/v1/pickups/{code}/ and POST .../redeem/.

Every answer a POS must act on has its own status and a stable `code` in the body: 200 hand over /
handed over, 404 unknown_code, 409 already_redeemed (with when, by whom, at which store) / not_paid /
refunded / cancelled, 410 expired, 403 wrong_store (with the store it belongs to) / store_not_allowed,
422 idempotency_key_reused, 429 rate_limited (with Retry-After).
"""

from axes.helpers import get_client_ip_address
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from merchants.models import Store
from o2o.tenancy import IsMerchantStaff

from ..models import OrderEvent
from .codes import voucher_code_parse
from .errors import PickupError, RateLimited, StoreNotAllowed, StoreRequired, UnknownCode
from .fast import pickup_redeem_fast_answer
from .models import Redemption
from .ready import SKIP_REASONS, NotMarkedReady, order_mark_ready, orders_mark_ready
from .selectors import Pickup, may_verify_pickups, order_for_cashier, pickup_lookup, pickup_stores_for, staff_name
from .services import pickup_answer_once, pickup_redeem
from .throttling import unknown_codes_limited

IDEMPOTENCY_KEY_MAX = 64

# --------------------------------------------------------------------------- serializers


class StoreRefSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class PickupItemSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="pk")
    product = serializers.IntegerField(source="product_id")
    sku = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    quantity = serializers.IntegerField()
    handed_over = serializers.IntegerField(help_text="Units collected already (earlier parts).")
    left = serializers.IntegerField(help_text="Units still to hand over.")


class CollectedPartSerializer(serializers.Serializer):
    """A part handed over earlier: when, where, by whom, what."""

    redemption = serializers.IntegerField(source="pk")
    redeemed_at = serializers.DateTimeField(source="created_at")
    store = StoreRefSerializer()
    cashier = serializers.SerializerMethodField()
    lines = serializers.ListField(child=serializers.DictField())

    def get_cashier(self, redemption: Redemption) -> str:
        return staff_name(redemption.cashier)


class PickupSerializer(serializers.Serializer):
    """A voucher that may be handed over now, at the store asked about."""

    code = serializers.CharField()
    code_display = serializers.CharField(help_text="The code as printed: ABCD-EFGH-JK.")
    order = serializers.IntegerField(source="order.pk")
    status = serializers.CharField()
    promotion = serializers.CharField(source="order.promotion.title")
    items = PickupItemSerializer(many=True)
    member_phone = serializers.CharField(source="masked_phone", help_text="Masked: +86138****5678.")
    paid_at = serializers.DateTimeField()
    pickup_store = StoreRefSerializer()
    pickup_deadline = serializers.DateTimeField(source="deadline")
    total = serializers.DecimalField(source="order.total", max_digits=12, decimal_places=2)
    currency = serializers.CharField(source="order.currency")
    ready_at = serializers.DateTimeField(source="order.ready_at", allow_null=True)
    collected = CollectedPartSerializer(many=True, help_text="Parts handed over already, oldest first.")


class RedemptionLineSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    product = serializers.IntegerField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()


class LeftLineSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="pk")
    name = serializers.CharField(source="product.name")
    quantity = serializers.IntegerField()
    handed_over = serializers.IntegerField()
    left = serializers.SerializerMethodField()

    def get_left(self, item) -> int:
        return item.quantity - item.handed_over


class RedemptionSerializer(serializers.Serializer):
    """A hand-over that happened: what (this part), where, when, by whom, and what is left to collect."""

    redemption = serializers.IntegerField(source="pk")
    order = serializers.IntegerField(source="order_id")
    code = serializers.CharField(source="order.pickup_code")
    status = serializers.CharField(source="order.status")
    redeemed_at = serializers.DateTimeField(source="created_at")
    store = StoreRefSerializer()
    cashier = serializers.SerializerMethodField()
    channel = serializers.CharField()
    lines = RedemptionLineSerializer(many=True, help_text="What this hand-over gave.")
    complete = serializers.SerializerMethodField(help_text="Everything is collected: the order is picked up.")
    order_lines = serializers.SerializerMethodField(help_text="Every line of the order after this hand-over.")
    member_phone = serializers.SerializerMethodField()

    def _items(self, redemption: Redemption) -> list:
        items = getattr(redemption, "order_items", None)
        if items is None:  # a retry's earlier redemption: read the lines as they stand
            items = list(redemption.order.items.select_related("product").order_by("id"))
            redemption.order_items = items
        return items

    def get_complete(self, redemption: Redemption) -> bool:
        return all(item.handed_over >= item.quantity for item in self._items(redemption))

    @extend_schema_field(LeftLineSerializer(many=True))
    def get_order_lines(self, redemption: Redemption) -> list:
        return LeftLineSerializer(self._items(redemption), many=True).data

    def get_cashier(self, redemption: Redemption) -> str:
        return staff_name(redemption.cashier)

    def get_member_phone(self, redemption: Redemption) -> str:
        return Pickup(order=redemption.order, items=[]).masked_phone


class RedeemLineSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="The line's `item` id from the lookup.")
    quantity = serializers.IntegerField(min_value=0, help_text="Units of it to hand over now.")


class RedeemRequestSerializer(serializers.Serializer):
    store = serializers.CharField(
        required=False, help_text="Code of the store you are at; may be left out by a cashier of one store."
    )
    lines = RedeemLineSerializer(
        many=True, required=False, allow_empty=False,
        help_text="A partial pickup: what to hand over now. Left out: everything that is left.",
    )


class PickupErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, for programs: unknown_code, not_paid, ...")
    detail = serializers.CharField(help_text="For people, in the request's language.")


class AlreadyRedeemedErrorSerializer(PickupErrorSerializer):
    redeemed_at = serializers.CharField(required=False, help_text="already_redeemed: when (ISO 8601).")
    by = serializers.CharField(required=False, help_text="already_redeemed: the cashier who handed it over.")
    store = serializers.CharField(required=False, help_text="already_redeemed: the store's name.")
    store_code = serializers.CharField(required=False, help_text="already_redeemed: the store's code.")


class WrongStoreErrorSerializer(PickupErrorSerializer):
    belongs_to = serializers.CharField(required=False, help_text="wrong_store: the store it is for.")
    belongs_to_code = serializers.CharField(required=False, help_text="wrong_store: that store's code.")


class ExpiredErrorSerializer(PickupErrorSerializer):
    deadline = serializers.CharField(help_text="The pickup deadline that passed (ISO 8601).")


class RateLimitedErrorSerializer(PickupErrorSerializer):
    retry_after = serializers.IntegerField(help_text="Seconds to wait; also in the Retry-After header.")


def _error(description: str, serializer=PickupErrorSerializer, **example) -> OpenApiResponse:
    examples = [OpenApiExample(example["code"], value=example, response_only=True)] if example else []
    return OpenApiResponse(serializer, description=description, examples=examples)


_ERRORS = {
    400: _error("`store_required`: you serve several stores; say which one. `unknown_line`: `lines` names an "
                "item that is not a line of this order (`item` in the body); `nothing_to_hand_over`: every "
                "quantity in `lines` is 0.", code="store_required",
                detail="Say at which store you are (you serve more than one)."),
    403: _error(
        "`wrong_store`: the voucher is for another store of the merchant (named in the body); "
        "`store_not_allowed`: you do not verify pickups at the store you named; "
        "or you are not a cashier or manager.",
        WrongStoreErrorSerializer, code="wrong_store", detail="This voucher is for pickup at another store.",
        belongs_to="Lotus Jing'an", belongs_to_code="jingan",
    ),
    404: _error("`unknown_code`: no voucher of your merchant has this code.", code="unknown_code",
                detail="No voucher has this code. Check it and try again."),
    409: _error(
        "`already_redeemed` (when, by whom, at which store), `not_paid`, `refunded` or `cancelled`: do not "
        "hand anything over. `too_many_units`: a line of `lines` asks for more than is left (`item`, `name`, "
        "`asked`, `left` in the body); nothing was handed over.",
        AlreadyRedeemedErrorSerializer, code="already_redeemed",
        detail="Already handed over. Do not hand it over again.", redeemed_at="2026-11-25T14:03:11+08:00",
        by="Wang Fang", store="Lotus Xintiandi", store_code="xtd",
    ),
    410: _error("`expired`: the pickup deadline has passed.", ExpiredErrorSerializer, code="expired",
                detail="Expired: the pickup deadline has passed. Do not hand anything over.",
                deadline="2026-11-20T23:59:59+08:00"),
    429: _error(
        "`rate_limited`: too many unknown codes from you or your address in the last minute; wait "
        "`retry_after` seconds (also the Retry-After header).",
        RateLimitedErrorSerializer, code="rate_limited",
        detail="Too many unknown codes. Wait a moment, then try again.", retry_after=42,
    ),
}
_CODE = OpenApiParameter(
    "code", str, OpenApiParameter.PATH,
    description="The voucher code, as printed (ABCD-EFGH-JK) or not; case, spaces and dashes do not matter.",
)
_STORE = OpenApiParameter(
    "store", str, OpenApiParameter.QUERY, required=False,
    description="Code of the store you are at. With it, a voucher for another store answers 403 wrong_store.",
)
_CLIENT = OpenApiParameter(
    "X-Client-Name", str, OpenApiParameter.HEADER, required=False,
    description="The POS terminal's name, kept in the redemption's audit record (else the User-Agent).",
)
_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description=(
        f"Up to {IDEMPOTENCY_KEY_MAX} characters, new for each hand-over the POS means. A retry with the same "
        "key (e.g. after a timeout) gets the first answer again, status and body, and never redeems twice. "
        "The same key for another code is 422."
    ),
)


# --------------------------------------------------------------------------- views


class VerifiesPickups(IsMerchantStaff):
    """Cashiers (at their stores), managers (at their merchant's) and platform superusers."""

    message = gettext_lazy("Only cashiers and managers verify pickups.")

    def has_permission(self, request, view):
        return super().has_permission(request, view) and may_verify_pickups(request.user)


def _ip(request: Request) -> str | None:
    return get_client_ip_address(request._request)


def _error_body(error: PickupError) -> dict:
    return {"code": error.code, "detail": error.message, **error.details}


def _error_response(error: PickupError) -> Response:
    response = Response(_error_body(error), status=error.http_status)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def _store(request: Request, code: str | None, *, required: bool) -> Store | None:
    """The store the request names (one of the user's), the user's only store, or None if not required."""
    stores = pickup_stores_for(request.user)
    if code:
        found = list(stores.filter(code=code)[:2])
        if len(found) != 1:  # not theirs (or a platform user's code that several merchants use)
            raise StoreNotAllowed() if not found else StoreRequired()
        return found[0]
    only = list(stores[:2])
    if len(only) == 1:
        return only[0]
    if required:
        raise StoreRequired()
    return None


class PickupLookupView(APIView):
    permission_classes = [VerifiesPickups]

    @extend_schema(
        operation_id="pickups_lookup",
        summary="Look a pickup voucher up",
        description="What the counter needs before handing over: items, masked phone, paid time, pickup store "
        "and deadline. Unknown codes count against a rate limit (per user and per address); known ones never.",
        tags=["pickups"],
        parameters=[_CODE, _STORE],
        responses={200: PickupSerializer, **{s: r for s, r in _ERRORS.items() if s != 400}},
    )
    def get(self, request: Request, code: str) -> Response:
        try:
            with unknown_codes_limited(user_id=request.user.pk, ip=_ip(request)):
                store = _store(request, request.query_params.get("store"), required=False)
                pickup = pickup_lookup(code=code, cashier=request.user, store=store)
        except PickupError as error:
            return _error_response(error)
        return Response(PickupSerializer(pickup).data)


class PickupRedeemView(APIView):
    permission_classes = [VerifiesPickups]

    @extend_schema(
        operation_id="pickups_redeem",
        summary="Hand a pickup voucher's goods over (exactly once)",
        description="Redeems the voucher at the store named in the body (or the cashier's only store): everything "
        "left to collect, or only the `lines` given (a partial pickup; the voucher stays valid for the rest, and "
        "each part is its own redemption). Exactly one of any number of concurrent full hand-overs gets 200; "
        "the others get 409 already_redeemed; concurrent parts never hand over more than was bought. Send an "
        "Idempotency-Key to retry safely.",
        tags=["pickups"],
        parameters=[_CODE, _KEY, _CLIENT],
        request=RedeemRequestSerializer,
        responses={
            200: RedemptionSerializer,
            **_ERRORS,
            422: _error("`idempotency_key_reused`: this key was used for another code.",
                        code="idempotency_key_reused",
                        detail="This Idempotency-Key was already used for another voucher code."),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        # A whole hand-over that goes through costs one statement there; anything else comes back here.
        fast = pickup_redeem_fast_answer(request, code)
        if fast is not None:
            return fast
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return Response(
                {"code": "invalid_idempotency_key",
                 "detail": _("An Idempotency-Key has at most %(n)d characters.") % {"n": IDEMPOTENCY_KEY_MAX}},
                status=400,
            )
        params = RedeemRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)

        def answer() -> tuple[int, dict]:
            try:
                with unknown_codes_limited(user_id=request.user.pk, ip=_ip(request)):
                    store = _store(request, params.validated_data.get("store"), required=True)
                    redemption = pickup_redeem(
                        code=code, cashier=request.user, store=store, channel=Redemption.Channel.API,
                        client=request.headers.get("X-Client-Name") or request.headers.get("User-Agent", ""),
                        client_ip=_ip(request), idempotency_key=key,
                        lines=params.validated_data.get("lines"),
                    )
            except RateLimited:
                raise  # not an answer to keep: the retry after the wait must be tried for real
            except PickupError as error:
                return error.http_status, _error_body(error)
            return 200, dict(RedemptionSerializer(redemption).data)

        try:
            status, body = (
                pickup_answer_once(user=request.user, key=key, code=code, answer=answer) if key else answer()
            )
        except PickupError as error:
            return _error_response(error)
        return Response(body, status=status)


# --------------------------------------------------------------------------- ready for pickup


class ReadyAnswerSerializer(serializers.Serializer):
    order = serializers.IntegerField(source="pk")
    code = serializers.CharField(source="pickup_code")
    status = serializers.CharField()
    ready_at = serializers.DateTimeField()


class ReadyBulkRequestSerializer(serializers.Serializer):
    orders = serializers.ListField(
        child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=1000,
        help_text="Order ids (at most 1000).",
    )


class ReadySkippedSerializer(serializers.Serializer):
    order = serializers.IntegerField()
    reason = serializers.CharField(help_text=", ".join(SKIP_REASONS))
    detail = serializers.CharField()


class ReadyBulkAnswerSerializer(serializers.Serializer):
    moved = serializers.ListField(child=serializers.IntegerField())
    skipped = ReadySkippedSerializer(many=True)


class PickupReadyView(APIView):
    permission_classes = [VerifiesPickups]

    @extend_schema(
        operation_id="pickups_mark_ready",
        summary="Mark a pickup order ready for pickup (the customer is told)",
        description="Paid -> ready for pickup; the customer gets an SMS (and an e-mail if they gave one), once. "
        "Cashiers may do this for orders of their stores, managers for any of their merchant's.",
        tags=["pickups"],
        parameters=[_CODE],
        request=None,
        responses={
            200: ReadyAnswerSerializer,
            404: _error("`unknown_code`: no voucher of yours has this code.", code="unknown_code",
                        detail="No voucher has this code. Check it and try again."),
            409: _error("`not_marked_ready`: `reason` says why (" + ", ".join(SKIP_REASONS) + ").",
                        code="not_marked_ready", detail="Not paid yet.", reason="not_paid"),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        try:
            with unknown_codes_limited(user_id=request.user.pk, ip=_ip(request)):
                order = order_for_cashier(code=voucher_code_parse(code), cashier=request.user, store=None)
                order = order_mark_ready(order=order, actor=request.user, channel=OrderEvent.Channel.API)
        except PickupError as error:
            return _error_response(error)
        except NotMarkedReady as error:
            if error.reason == "not_found":  # a cashier asking about another store's order: unknown to them
                return _error_response(UnknownCode())
            return Response({"code": error.code, "detail": error.message, "reason": error.reason},
                            status=error.http_status)
        return Response(ReadyAnswerSerializer(order).data)


class PickupReadyBulkView(APIView):
    permission_classes = [VerifiesPickups]

    @extend_schema(
        operation_id="pickups_mark_ready_bulk",
        summary="Mark many pickup orders ready for pickup",
        description="Set-based: every paid pickup order among `orders` that you may prepare moves to ready for "
        "pickup and its customer is told; the others are listed in `skipped` with the reason (another "
        "merchant's order is `not_found`, like one that does not exist).",
        tags=["pickups"],
        request=ReadyBulkRequestSerializer,
        responses={200: ReadyBulkAnswerSerializer},
    )
    def post(self, request: Request) -> Response:
        params = ReadyBulkRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        outcome = orders_mark_ready(
            order_ids=params.validated_data["orders"], actor=request.user, channel=OrderEvent.Channel.API
        )
        skipped = [
            {"order": pk, "reason": reason, "detail": str(SKIP_REASONS[reason])}
            for pk, reason in sorted(outcome.skipped.items())
        ]
        return Response({"moved": outcome.moved, "skipped": skipped})
