"""The cashier page at /cashier/: scan or type a voucher code, see the order, hand it over once.

Every outcome is a screen of its own (colour, big words, what to do), answered with the HTTP status
the POS API uses for it, so the page and the API cannot drift apart. Staff sign in with Django's
normal login at /cashier/login/ (cashiers are not admin users); a customer who scans their own
voucher lands there too and is told where their order page is, and nothing of the order.
"""

import uuid
from functools import wraps

from axes.helpers import get_client_ip_address
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from merchants.models import Store

from .codes import voucher_code_parse
from .errors import LinesError, PickupError, RateLimited, StoreNotAllowed
from .models import Redemption
from .selectors import (
    may_verify_pickups,
    pickup_for_redemption,
    pickup_lookup,
    pickup_stores_for,
    redemption_for_staff,
)
from .services import pickup_redeem
from .throttling import unknown_codes_limited

SESSION_STORE = "cashier_store"


def _cashier_view(view):
    """Signed in (else the cashier login, keeping ?code=), a cashier or manager, never cached."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not may_verify_pickups(request.user):
            return render(request, "cashier/page.html", {"screen": "not_cashier"}, status=403)
        return view(request, *args, **kwargs)

    return never_cache(login_required(wrapped, login_url=reverse_lazy("cashier:login")))


def _stores(request: HttpRequest) -> list[Store]:
    if not hasattr(request, "_cashier_stores"):
        request._cashier_stores = list(pickup_stores_for(request.user)[:50])
    return request._cashier_stores


def _current_store(request: HttpRequest) -> Store | None:
    """The store chosen in this session, or the user's only store; None: they must choose."""
    stores = _stores(request)
    chosen = request.session.get(SESSION_STORE)
    for store in stores:
        if store.pk == chosen:
            return store
    return stores[0] if len(stores) == 1 else None


def _ip(request: HttpRequest) -> str | None:
    return get_client_ip_address(request)


def _render(request: HttpRequest, screen: str, *, store: Store | None, status: int = 200, **context) -> HttpResponse:
    context = {"screen": screen, "store": store, "stores": _stores(request), **context}
    response = render(request, "cashier/page.html", context, status=status)
    error = context.get("error")
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def _outcome(request: HttpRequest, error: PickupError, *, store: Store | None, typed: str = "") -> HttpResponse:
    switch_to = None
    if error.screen == "wrong_store":
        switch_to = next((s for s in _stores(request) if s.code == error.details.get("belongs_to_code")), None)
    return _render(
        request, error.screen, store=store, status=error.http_status, error=error, typed=typed, switch_to=switch_to,
        code=voucher_code_parse(typed),
    )


@require_GET
@_cashier_view
def cashier_home(request: HttpRequest) -> HttpResponse:
    """The scan screen; with ?code= (typed, scanned, or the voucher QR's own link) the lookup's answer."""
    store = _current_store(request)
    typed = request.GET.get("code", "").strip()
    if store is None:
        return _render(request, "choose_store", store=None, next_code=typed)
    if not typed:
        return _render(request, "scan", store=store)
    try:
        with unknown_codes_limited(user_id=request.user.pk, ip=_ip(request)):
            pickup = pickup_lookup(code=typed, cashier=request.user, store=store)
    except PickupError as error:
        return _outcome(request, error, store=store, typed=typed)
    # One key per rendered form: a double tap on Hand over finds the first redemption.
    return _render(request, "order", store=store, pickup=pickup, form_key=uuid.uuid4().hex)


@require_POST
@_cashier_view
def cashier_redeem(request: HttpRequest) -> HttpResponse:
    """Hand over: the order shown on the form, at the store shown on it."""
    typed = request.POST.get("code", "")
    store = next((s for s in _stores(request) if str(s.pk) == request.POST.get("store")), None)
    if store is None:
        return _outcome(request, StoreNotAllowed(), store=_current_store(request), typed=typed)
    try:
        with unknown_codes_limited(user_id=request.user.pk, ip=_ip(request)):
            redemption = pickup_redeem(
                code=typed, cashier=request.user, store=store, channel=Redemption.Channel.WEB,
                client=request.headers.get("User-Agent", ""), client_ip=_ip(request),
                idempotency_key=request.POST.get("form_key", "")[:64], lines=_lines_posted(request),
            )
    except LinesError as error:
        # The same order again, with what was wrong above its lines: the cashier corrects and retries.
        try:
            pickup = pickup_lookup(code=typed, cashier=request.user, store=store)
        except PickupError as other:
            return _outcome(request, other, store=store, typed=typed)
        return _render(request, "order", store=store, pickup=pickup, form_key=uuid.uuid4().hex, error=error,
                       status=error.http_status)
    except PickupError as error:
        return _outcome(request, error, store=store, typed=typed)
    # Post/redirect/get: reloading the success screen never posts again.
    return redirect("cashier:redeemed", pk=redemption.pk)


def _lines_posted(request: HttpRequest) -> list[dict] | None:
    """The quantities the page's steppers posted (`qty-<item id>`), or None (a form without them:
    everything left). Not a number stays as typed, for the service to refuse naming the line."""
    lines = []
    for name, value in request.POST.items():
        if name.startswith("qty-") and name[4:].isdigit():
            value = value.strip()
            lines.append({"item": int(name[4:]), "quantity": int(value) if value.isdigit() else value})
    return lines or None


@require_GET
@_cashier_view
def cashier_redeemed(request: HttpRequest, pk: int) -> HttpResponse:
    redemption = redemption_for_staff(pk=pk, user=request.user)
    if redemption is None:
        return _render(request, "unknown", store=_current_store(request), status=404)
    return _render(
        request, "redeemed", store=_current_store(request), redemption=redemption,
        pickup=pickup_for_redemption(redemption=redemption),
    )


@require_POST
@_cashier_view
def cashier_store_choose(request: HttpRequest) -> HttpResponse:
    """Remember the store this cashier stands at (in the session), then carry on with any code."""
    store = next((s for s in _stores(request) if str(s.pk) == request.POST.get("store")), None)
    if store is None:
        return _render(request, "choose_store", store=None, status=400)
    request.session[SESSION_STORE] = store.pk
    code = request.POST.get("code", "").strip()
    url = reverse("cashier:home")
    return redirect(f"{url}?{urlencode({'code': code})}" if code else url)


@require_GET
@_cashier_view
def cashier_store_picker(request: HttpRequest) -> HttpResponse:
    return _render(request, "choose_store", store=_current_store(request), next_code="")


class CashierLoginView(auth_views.LoginView):
    """Django's login with the counter's look. A customer who scanned their own voucher is told where
    their order page is, and shown nothing of the order."""

    template_name = "cashier/login.html"
    next_page = reverse_lazy("cashier:home")

    def get_success_url(self) -> str:
        url = super().get_success_url()
        # Only back into the cashier page: a crafted ?next= cannot send staff anywhere else.
        home = reverse("cashier:home")
        if url.startswith(home) and url_has_allowed_host_and_scheme(url, allowed_hosts={self.request.get_host()}):
            return url
        return home


class CashierLogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("cashier:login")
