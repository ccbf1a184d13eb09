"""Payments in the admin and the API: the Refund page of an order, who may use it, and provider
account secrets that are written but never shown again."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import Order, Payment, PaymentConfig, PaymentNotification, Refund
from orders.payments.models import Provider, SandboxTrade
from orders.payments.providers.sandbox import sandbox_trade_pay
from orders.payments.services import payment_query, refund_create
from tests.factories import UserFactory, staff
from tests.payments.sandbox_world import (
    notification_for,
    placed_order,
    post_notification,
    sandbox_shop,
    sandbox_trade,
    started_payment,
)

TEA_SECRET = "secret-of-teahouse-0123456789abcdef"


@pytest.fixture
def shop(db):
    return sandbox_shop("teahouse")


@pytest.fixture
def rival(db):
    return sandbox_shop("rival")


@pytest.fixture
def manager(shop):
    return staff(shop.merchant, "manager", username="tea_manager")


@pytest.fixture
def rival_manager(rival):
    return staff(rival.merchant, "manager", username="rival_manager")


def paid_order(shop, quantity: int = 2) -> Order:
    order = placed_order(shop, quantity=quantity, phone=f"139 {Order.objects.count():04d} 0000")
    payment = started_payment(order)
    sandbox_trade_pay(trade=sandbox_trade(payment), deliveries=0)
    payment_query(payment=payment)
    order.refresh_from_db()
    return order


def refund_url(order: Order) -> str:
    return reverse("admin:orders_order_refund", args=[order.pk])


def field_value(html: str, name: str) -> str:
    return re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)


# --------------------------------------------------------------------------- the Refund page


def test_a_manager_refunds_part_of_an_order_from_its_page(client, shop, manager):
    # Given a paid order of 198.00, on its admin page
    order = paid_order(shop)
    client.force_login(manager)
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert f'href="{refund_url(order)}"' in page
    # The Refund page offers what is left, and asks why
    form = client.get(refund_url(order))
    html = form.content.decode()
    assert form.status_code == 200 and field_value(html, "amount") == "198.00"
    assert "refundable 198.00" in html
    # When the manager refunds 48.00 with a reason
    response = client.post(refund_url(order), {
        "payment": field_value(html, "payment"), "amount": "48.00", "reason": "One tin dented",
    }, follow=True)
    # Then they are back on the order, told it is done, and the refund is listed there and on the Refund page
    assert response.redirect_chain[-1][0] == reverse("admin:orders_order_change", args=[order.pk])
    assert "Refunded 48.00 CNY." in response.content.decode()
    assert "One tin dented" in response.content.decode()
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.requested_by) == (Decimal("48.00"), "succeeded", manager)
    again = client.get(refund_url(order)).content.decode()
    assert field_value(again, "amount") == "150.00" and "One tin dented" in again
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_a_full_refund_from_the_page_refunds_the_order_and_the_button_goes_away(client, shop, manager):
    order = paid_order(shop)
    client.force_login(manager)
    html = client.get(refund_url(order)).content.decode()
    client.post(refund_url(order), {"payment": field_value(html, "payment"), "amount": "198.00", "reason": "Gone"})
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert refund_url(order) not in page
    assert "Nothing of this order can be refunded" in client.get(refund_url(order)).content.decode()


def test_more_than_is_left_is_refused_on_the_page_with_the_limit(client, shop, manager):
    order = paid_order(shop)
    refund_create(order=order, amount=Decimal("150.00"), reason="Partly", requested_by=manager)
    client.force_login(manager)
    html = client.get(refund_url(order)).content.decode()
    response = client.post(refund_url(order), {"payment": field_value(html, "payment"), "amount": "60.00",
                                                "reason": "Too much"})
    assert response.status_code == 200
    assert "At most 48.00 CNY can be refunded: 198.00 paid, 150.00 refunded or being refunded already." in (
        response.content.decode()
    )
    assert Refund.objects.count() == 1


def test_a_refund_without_a_reason_is_refused_on_the_page(client, shop, manager):
    order = paid_order(shop)
    client.force_login(manager)
    html = client.get(refund_url(order)).content.decode()
    response = client.post(refund_url(order), {"payment": field_value(html, "payment"), "amount": "1.00"})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert not Refund.objects.exists()


def test_a_refund_the_provider_refuses_shows_its_reason(client, shop, manager):
    order = paid_order(shop)
    SandboxTrade.objects.all().delete()
    client.force_login(manager)
    html = client.get(refund_url(order)).content.decode()
    response = client.post(refund_url(order), {"payment": field_value(html, "payment"), "amount": "10.00",
                                                "reason": "Dented"}, follow=True)
    text = response.content.decode()
    assert "The provider refused the refund: The sandbox has no paid trade" in text
    assert "Nothing was refunded." in text
    assert Refund.objects.get().status == Refund.Status.FAILED
    assert Payment.objects.get().refunded_amount == 0


def test_a_rival_manager_gets_404_on_the_refund_page_and_refunds_nothing(client, shop, rival_manager):
    order = paid_order(shop)
    client.force_login(rival_manager)
    assert client.get(refund_url(order)).status_code == 404
    html_like = {"payment": str(order.payments.get().pk), "amount": "1.00", "reason": "mine now"}
    assert client.post(refund_url(order), html_like).status_code == 404
    assert client.get(reverse("admin:orders_order_refund", args=[987654])).status_code == 404
    assert not Refund.objects.exists()


@pytest.mark.parametrize("role", ["analyst", "cashier"])
def test_other_staff_of_the_merchant_cannot_refund(client, shop, role):
    order = paid_order(shop)
    client.force_login(staff(shop.merchant, role, [shop.store] if role == "cashier" else ()))
    # (cashiers do not get into the admin at all: they are sent to its login page)
    assert client.get(refund_url(order)).status_code in (302, 403)
    assert client.post(refund_url(order), {"amount": "1.00", "reason": "x"}).status_code in (302, 403)
    if role == "analyst":
        page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
        assert refund_url(order) not in page
    assert not Refund.objects.exists()


def test_a_manager_sees_payments_notifications_and_refunds_of_their_merchant_only(client, shop, rival, manager):
    ours, theirs = paid_order(shop), paid_order(rival)
    refund_create(order=ours, amount=Decimal("1.00"), reason="ours", requested_by=None)
    refund_create(order=theirs, amount=Decimal("2.00"), reason="theirs", requested_by=None)
    client.force_login(manager)
    for model in ("payment", "paymentnotification", "refund"):
        response = client.get(reverse(f"admin:orders_{model}_changelist"))
        assert response.status_code == 200, model
        rows = list(response.context["cl"].result_list)
        assert rows and all(row.merchant_id == shop.merchant.pk for row in rows), model
    their_payment = theirs.payments.get()
    assert client.get(reverse("admin:orders_payment_change", args=[their_payment.pk])).status_code == 404


def test_nobody_edits_or_deletes_payments_in_the_admin(client, shop, manager):
    order = paid_order(shop)
    payment = order.payments.get()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:orders_payment_change", args=[payment.pk])).content.decode()
    assert 'name="_save"' not in page
    assert client.get(reverse("admin:orders_payment_delete", args=[payment.pk])).status_code == 403
    assert client.get(reverse("admin:orders_payment_add")).status_code == 403


# --------------------------------------------------------------------------- provider account secrets


def every_payment_page(client, shop) -> str:
    """The HTML of every admin page a payments person opens (account list, forms, history, payments)."""
    config = shop.config
    urls = [
        reverse("admin:orders_paymentconfig_changelist"),
        reverse("admin:orders_paymentconfig_change", args=[config.pk]),
        reverse("admin:orders_paymentconfig_history", args=[config.pk]),
        reverse("admin:orders_paymentconfig_add"),
        reverse("admin:orders_paymentconfig_delete", args=[config.pk]),
        reverse("admin:orders_payment_changelist"),
        reverse("admin:orders_paymentnotification_changelist"),
        reverse("admin:orders_refund_changelist"),
        reverse("admin:index"),
    ]
    notification = PaymentNotification.objects.filter(merchant=shop.merchant).first()
    if notification:
        urls.append(reverse("admin:orders_paymentnotification_change", args=[notification.pk]))
    pages = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages.append(response.content.decode())
    return "\n".join(pages)


@pytest.mark.parametrize("who", ["manager", "superuser"])
def test_provider_account_secrets_never_appear_on_any_admin_page(client, shop, manager, who):
    PaymentConfig.objects.filter(pk=shop.config.pk).update(api_v3_key="APIV3-KEY-0123456789abcdef0123456")
    post_notification(client, "teahouse", *notification_for(started_payment(placed_order(shop))))
    client.force_login(manager if who == "manager" else UserFactory(is_staff=True, is_superuser=True))
    html = every_payment_page(client, shop)
    assert TEA_SECRET not in html and "APIV3-KEY" not in html
    assert "signing secret set" in html  # whether it is set is shown, not what it is


def test_saving_an_account_with_the_secret_left_empty_keeps_it(client, shop, manager):
    client.force_login(manager)
    url = reverse("admin:orders_paymentconfig_change", args=[shop.config.pk])
    response = client.post(url, {
        "provider": "sandbox", "is_active": "on", "app_id": "wx-new", "merchant_no": "", "provider_public_keys": "{}",
        "merchant_cert_serial": "", "new_signing_secret": "", "new_api_v3_key": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    shop.config.refresh_from_db()
    assert shop.config.signing_secret == TEA_SECRET and shop.config.app_id == "wx-new"


def test_a_new_secret_replaces_the_old_one_and_is_not_shown_back(client, shop, manager):
    client.force_login(manager)
    url = reverse("admin:orders_paymentconfig_change", args=[shop.config.pk])
    data = {"provider": "sandbox", "is_active": "on", "app_id": "", "merchant_no": "", "provider_public_keys": "{}",
            "merchant_cert_serial": "", "new_signing_secret": "brand-new-secret-0987654321", "new_api_v3_key": ""}
    assert client.post(url, data).status_code == 302
    shop.config.refresh_from_db()
    assert shop.config.signing_secret == "brand-new-secret-0987654321"
    assert "brand-new-secret" not in every_payment_page(client, shop)
    # An error on the form does not echo what was typed either
    bad = client.post(url, {**data, "provider_public_keys": "{not json", "new_signing_secret": "typed-secret-xyz"})
    assert bad.status_code == 200 and "typed-secret-xyz" not in bad.content.decode()


def test_a_manager_adds_a_provider_account_for_their_merchant_only(client, shop, rival, manager):
    client.force_login(manager)
    response = client.post(reverse("admin:orders_paymentconfig_add"), {
        "merchant": rival.merchant.pk, "provider": "alipay", "is_active": "on", "app_id": "2021000000000001",
        "merchant_no": "2088000000000001", "provider_public_keys": "{}", "merchant_cert_serial": "",
        "new_signing_secret": "-----BEGIN PRIVATE KEY-----x", "new_api_v3_key": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    created = PaymentConfig.objects.get(provider=Provider.ALIPAY)
    assert created.merchant == shop.merchant and created.signing_secret == "-----BEGIN PRIVATE KEY-----x"


def test_a_sandbox_account_added_without_a_secret_gets_a_random_one(client, shop, manager):
    shop.config.delete()
    client.force_login(manager)
    response = client.post(reverse("admin:orders_paymentconfig_add"), {
        "provider": "sandbox", "is_active": "on", "app_id": "", "merchant_no": "", "provider_public_keys": "{}",
        "merchant_cert_serial": "", "new_signing_secret": "", "new_api_v3_key": "",
    })
    assert response.status_code == 302
    assert len(PaymentConfig.objects.get(merchant=shop.merchant).signing_secret) >= 32


def test_rival_staff_cannot_see_or_open_our_payment_account(client, shop, rival_manager):
    client.force_login(rival_manager)
    listing = client.get(reverse("admin:orders_paymentconfig_changelist"))
    assert [c.merchant_id for c in listing.context["cl"].result_list] == [rival_manager.staff_role.merchant_id]
    assert client.get(reverse("admin:orders_paymentconfig_change", args=[shop.config.pk])).status_code == 404


def test_analysts_do_not_see_payment_accounts(client, shop):
    client.force_login(staff(shop.merchant, "analyst"))
    assert client.get(reverse("admin:orders_paymentconfig_changelist")).status_code == 403
    assert client.get(reverse("admin:orders_payment_changelist")).status_code == 200


# --------------------------------------------------------------------------- the API


def test_the_api_says_whether_account_secrets_are_set_never_what_they_are(client, shop, rival, manager):
    paid_order(shop)
    client.force_login(manager)
    accounts = client.get("/api/v1/payment-accounts/")
    payments = client.get("/api/v1/payments/")
    assert accounts.status_code == payments.status_code == 200
    [account] = accounts.json()["results"]
    assert account["provider"] == "sandbox" and account["has_signing_secret"] is True
    assert account["has_api_v3_key"] is False
    for response in (accounts, payments, client.get(f"/api/v1/payment-accounts/{shop.config.pk}/")):
        assert TEA_SECRET not in response.content.decode()
        assert '"signing_secret"' not in response.content.decode()
    assert client.get(f"/api/v1/payment-accounts/{rival.config.pk}/").status_code == 404
    assert TEA_SECRET not in client.get("/api/schema/").content.decode()


def test_payments_api_lists_ours_and_a_manager_refunds_through_it(client, shop, rival, manager):
    ours, theirs = paid_order(shop), paid_order(rival)
    client.force_login(manager)
    listed = client.get("/api/v1/payments/").json()["results"]
    assert [p["order"] for p in listed] == [ours.pk]
    payment = ours.payments.get()
    response = client.post(f"/api/v1/payments/{payment.pk}/refunds/", {"amount": "8.00", "reason": "Dented"},
                           content_type="application/json")
    assert response.status_code == 201 and response.json()["status"] == "succeeded"
    too_much = client.post(f"/api/v1/payments/{payment.pk}/refunds/", {"amount": "190.01", "reason": "x"},
                           content_type="application/json")
    assert too_much.status_code == 400 and too_much.json()["code"] == "over_refund"
    assert too_much.json()["refundable"] == "190.00"
    rival_payment = theirs.payments.get()
    assert client.post(f"/api/v1/payments/{rival_payment.pk}/refunds/", {"reason": "x"},
                       content_type="application/json").status_code == 404
    assert client.get(f"/api/v1/payments/{payment.pk}/").json()["refunds"][0]["amount"] == "8.00"


def test_analysts_read_payments_but_cannot_refund_and_cashiers_see_none(client, shop):
    order = paid_order(shop)
    payment = order.payments.get()
    client.force_login(staff(shop.merchant, "analyst"))
    assert client.get("/api/v1/payments/").status_code == 200
    assert client.post(f"/api/v1/payments/{payment.pk}/refunds/", {"reason": "x"},
                       content_type="application/json").status_code == 403
    assert client.get("/api/v1/payment-accounts/").status_code == 403
    client.force_login(staff(shop.merchant, "cashier", [shop.store]))
    assert client.get("/api/v1/payments/").status_code == 403
    assert not Refund.objects.exists()
