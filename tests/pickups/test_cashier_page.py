"""The cashier page: sign-in, the store a device stands at, the lookup, Hand over, and one clear screen
(and HTTP status) for every outcome."""

import re
from datetime import timedelta
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import Order
from orders.pickups.models import Redemption
from orders.qr import voucher_url
from tests.factories import UserFactory

from .conftest import signed_in

OS = Order.Status
PASSWORD = "correct-horse-battery"


def text(response) -> str:
    """The page's visible words, tags stripped and spaces squeezed."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def outcome(response) -> str:
    match = re.search(r'data-outcome="([^"]+)"', response.content.decode())
    return match.group(1) if match else ""


def look_up(client, code):
    return client.get("/cashier/", {"code": code})


def hand_over(client, page):
    """Post the Hand over form exactly as the page rendered it."""
    html = page.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html.split('id="handover-form"')[1]))
    return client.post("/cashier/redeem/", fields)


# --------------------------------------------------------------------------- signing in


def test_a_customer_scanning_their_voucher_lands_on_the_staff_sign_in_and_sees_nothing_of_the_order(shop):
    order = shop.order(phone="13812345678")
    link = urlsplit(voucher_url(pickup_code=order.pickup_code))
    url = f"{link.path}?{link.query}"
    response = Client().get(url, follow=True)
    assert response.redirect_chain[-1][0] == f"/cashier/login/?next={quote(url, safe='/')}"
    page = text(response)
    assert "Customer? Your order page is the link you received." in page
    for secret in ("Longjing", "5678", "Xintiandi", "Lotus", str(order.pk)):
        assert secret not in page
    assert Order.objects.get(pk=order.pk).status == OS.PAID


def test_cashier_signs_in_and_comes_back_to_the_scanned_code(shop):
    order = shop.order()
    client = Client()
    next_url = f"/cashier/?code={order.pickup_code}"
    response = client.post(
        "/cashier/login/", {"username": "wang.fang", "password": PASSWORD, "next": next_url}, follow=True
    )
    assert response.redirect_chain[-1][0] == next_url
    assert "OK to hand over" in text(response)


def test_sign_in_never_redirects_out_of_the_cashier_page(shop):
    response = Client().post(
        "/cashier/login/", {"username": "wang.fang", "password": PASSWORD, "next": "https://evil.test/"}
    )
    assert response["Location"] == "/cashier/"


def test_wrong_password_says_so(shop):
    response = Client().post("/cashier/login/", {"username": "wang.fang", "password": "nope"})
    assert response.status_code == 200 and "do not match" in text(response)


def test_staff_who_are_not_cashiers_get_a_plain_refusal(shop):
    for user in (shop.analyst, UserFactory()):
        response = signed_in(user).get("/cashier/")
        assert response.status_code == 403 and "For cashiers only" in text(response)


# --------------------------------------------------------------------------- stores


def test_a_cashier_of_one_store_starts_at_that_store(shop):
    response = signed_in(shop.cashier).get("/cashier/")
    assert response.status_code == 200
    assert 'id="current-store">Lotus Xintiandi<' in response.content.decode()
    assert "Scan or type the voucher code" in text(response)


def test_a_cashier_of_several_stores_picks_one_and_it_is_remembered(shop):
    order = shop.order(store=shop.jingan)
    client = signed_in(shop.floater)
    # The voucher link first asks where they are, and keeps the code through the choice.
    picker = look_up(client, order.pickup_code)
    assert "Which store are you at?" in text(picker) and "Lotus Pudong" not in text(picker)
    chosen = client.post("/cashier/store/choose/", {"store": shop.jingan.pk, "code": order.pickup_code}, follow=True)
    assert "OK to hand over" in text(chosen)
    assert client.get("/cashier/").context["store"] == shop.jingan
    # A store that is not theirs cannot be chosen.
    assert client.post("/cashier/store/choose/", {"store": shop.pudong.pk}).status_code == 400
    assert client.get("/cashier/").context["store"] == shop.jingan


# --------------------------------------------------------------------------- the order and Hand over


def test_lookup_shows_items_masked_phone_paid_time_store_and_deadline(shop):
    order = shop.order(quantity=2, phone="138 1234 5678")
    page = look_up(signed_in(shop.cashier), order.pickup_code.lower())
    words = text(page)
    assert page.status_code == 200
    assert "OK to hand over" in words
    assert "2 × West Lake Longjing tea 250g" in words and "4 × Celadon tea cup" in words
    assert "+86138****5678" in words and "13812345678" not in words
    local = timezone.localtime(order.paid_at, timezone=ZoneInfo(shop.merchant.timezone))
    assert local.strftime("%Y-%m-%d %H:%M") in words
    assert "Pickup store Lotus Xintiandi" in words and "Pick up by" in words
    assert 'id="hand-over"' in page.content.decode()


def test_hand_over_redeems_and_shows_the_handed_over_screen(shop):
    order = shop.order()
    client = signed_in(shop.cashier)
    response = hand_over(client, look_up(client, order.pickup_code))
    redemption = Redemption.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cashier/redeemed/{redemption.pk}/"
    done = client.get(response["Location"])
    assert "Handed over" in text(done) and "Next customer" in text(done)
    assert (redemption.channel, redemption.cashier, redemption.store) == ("web", shop.cashier, shop.xtd)
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP


def test_a_double_tap_on_hand_over_is_one_redemption_and_two_success_screens(shop):
    order = shop.order()
    client = signed_in(shop.cashier)
    page = look_up(client, order.pickup_code)
    first, second = hand_over(client, page), hand_over(client, page)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert Redemption.objects.count() == 1


def test_hand_over_needs_the_csrf_token(shop):
    order = shop.order()
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.cashier)
    assert client.post("/cashier/redeem/", {"code": order.pickup_code, "store": shop.xtd.pk}).status_code == 403
    assert Order.objects.get(pk=order.pk).status == OS.PAID


def test_a_scanner_typing_the_whole_voucher_link_finds_the_order(shop):
    order = shop.order()
    page = look_up(signed_in(shop.cashier), voucher_url(pickup_code=order.pickup_code))
    assert "OK to hand over" in text(page)


def test_hand_over_at_a_store_not_theirs_is_refused(shop):
    order = shop.order(store=shop.jingan)
    client = signed_in(shop.cashier)
    response = client.post("/cashier/redeem/", {"code": order.pickup_code, "store": shop.jingan.pk})
    assert response.status_code == 403 and outcome(response) == "store_not_allowed"
    assert Order.objects.get(pk=order.pk).status == OS.PAID


# --------------------------------------------------------------------------- every outcome screen


def test_already_redeemed_screen_says_when_by_whom_and_where(shop):
    order = shop.order()
    client = signed_in(shop.cashier)
    hand_over(client, look_up(client, order.pickup_code))
    redemption = Redemption.objects.get()
    manager = signed_in(shop.manager)  # at another store: the answer is the same everywhere
    manager.post("/cashier/store/choose/", {"store": shop.jingan.pk})
    for response in (look_up(client, order.pickup_code), look_up(manager, order.pickup_code)):
        assert response.status_code == 409 and outcome(response) == "already_redeemed"
        words = text(response)
        when = timezone.localtime(redemption.created_at, ZoneInfo(shop.merchant.timezone))
        assert "Already handed over" in words
        assert f"On {when:%Y-%m-%d %H:%M} by wang.fang at Lotus Xintiandi." in words
        assert "Do not hand it over again." in words
        assert 'id="hand-over"' not in response.content.decode()


def test_wrong_store_screen_names_the_store_and_offers_to_switch_if_theirs(shop):
    order = shop.order(store=shop.jingan)
    client = signed_in(shop.floater)
    client.post("/cashier/store/choose/", {"store": shop.xtd.pk})
    response = look_up(client, order.pickup_code)
    assert response.status_code == 403 and outcome(response) == "wrong_store"
    assert "This voucher is for pickup at Lotus Jing'an." in text(response).replace("&#x27;", "'")
    assert "switch" in text(response)
    # A cashier of Xintiandi only is told where it belongs, with nothing to switch to.
    only_here = look_up(signed_in(shop.cashier), order.pickup_code)
    assert outcome(only_here) == "wrong_store" and "switch" not in text(only_here)


@pytest.mark.parametrize(
    ("status", "screen", "http_status", "words"),
    [
        (OS.PENDING_PAYMENT, "not_paid", 409, "Not paid"),
        (OS.REFUNDED, "refunded", 409, "Refunded"),
        (OS.EXPIRED, "expired", 410, "Expired"),
        (OS.CANCELLED, "cancelled", 409, "Cancelled"),
    ],
)
def test_closed_orders_have_their_own_screens(shop, status, screen, http_status, words):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(status=status)
    response = look_up(signed_in(shop.cashier), order.pickup_code)
    assert (response.status_code, outcome(response)) == (http_status, screen)
    assert words in text(response) and "Do not hand anything over" in text(response)
    assert 'id="hand-over"' not in response.content.decode()


def test_past_the_deadline_shows_the_expired_screen_with_the_deadline(shop):
    order = shop.order()
    Order.objects.filter(pk=order.pk).update(pickup_deadline=timezone.now() - timedelta(days=1))
    response = look_up(signed_in(shop.cashier), order.pickup_code)
    assert (response.status_code, outcome(response)) == (410, "expired")
    assert "The pickup deadline was" in text(response)


def test_unknown_code_screen_echoes_the_code_and_hides_other_merchants(shop):
    client = signed_in(shop.cashier)
    for code in ("ABCD-EFGH-JK", shop.rival_order.pickup_code):
        response = look_up(client, code)
        assert (response.status_code, outcome(response)) == (404, "unknown_code")
        assert "Unknown code" in text(response) and "Check the code and try again." in text(response)


def test_unknown_code_echo_is_escaped(shop):
    response = look_up(signed_in(shop.cashier), "<script>alert(1)</script>")
    assert response.status_code == 404 and "<script>alert" not in response.content.decode()


def test_rate_limited_screen_says_how_long_to_wait(shop, monkeypatch):
    from orders.pickups import throttling

    monkeypatch.setattr(throttling, "MISSES_PER_USER", 2)
    client = signed_in(shop.cashier)
    look_up(client, "AAAAAAAAAA"), look_up(client, "BBBBBBBBBB")
    response = look_up(client, shop.order().pickup_code)
    assert (response.status_code, outcome(response)) == (429, "rate_limited")
    assert "Too many unknown codes" in text(response) and 1 <= int(response["Retry-After"]) <= 60
    assert re.search(r"Wait \d+ seconds, then try again.", text(response))


def test_redeemed_screen_of_another_merchant_is_not_found(shop):
    rival_order = shop.rival_order
    from orders.pickups.services import pickup_redeem

    redemption = pickup_redeem(
        code=rival_order.pickup_code, cashier=shop.rival_cashier, store=rival_order.pickup_store, channel="web"
    )
    response = signed_in(shop.cashier).get(f"/cashier/redeemed/{redemption.pk}/")
    assert response.status_code == 404 and "Rival" not in text(response)


def test_cashier_pages_are_never_cached(shop):
    response = signed_in(shop.cashier).get("/cashier/")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_repeated_wrong_passwords_lock_the_cashier_sign_in_like_the_admins(shop):
    client = Client()
    for _ in range(5):
        client.post("/cashier/login/", {"username": "wang.fang", "password": "guess"})
    locked = client.post("/cashier/login/", {"username": "wang.fang", "password": PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
