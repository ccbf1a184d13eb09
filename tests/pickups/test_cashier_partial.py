"""The cashier page's partial pickup: a stepper per line (default: all that is left), a part handed over
now and the rest later, what was collected (when, where, by whom), and one clear answer when the
quantities do not fit."""

import re

from orders.models import Order
from orders.pickups.models import Redemption
from tests.factories import staff

from .conftest import signed_in
from .test_cashier_page import look_up, text
from .test_partial import counts, lines_of

OS = Order.Status


def form_of(page) -> dict[str, str]:
    """What the Hand over form posts: its hidden fields and the steppers' numbers, as rendered."""
    html = page.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html.split('id="handover-form"')[1]))
    fields.update(re.findall(r'form="handover-form" name="(qty-\d+)" id="qty-\d+" value="(\d+)"', html))
    return fields


def test_the_cashier_hands_over_a_part_then_the_rest(shop):
    order = shop.order(quantity=2)  # 2 teas, 4 cups
    tea, cup = lines_of(order).values()
    client = signed_in(shop.cashier)
    page = look_up(client, order.pickup_code)
    fields = form_of(page)
    assert fields[f"qty-{tea.pk}"] == "2" and fields[f"qty-{cup.pk}"] == "4"  # everything left, by default

    # The customer takes the tea and one cup now
    response = client.post("/cashier/redeem/", {**fields, f"qty-{cup.pk}": "1"}, follow=True)
    assert response.status_code == 200
    shown = text(response)
    assert "Handed over" in shown and "2 × West Lake Longjing tea 250g" in shown and "1 × Celadon tea cup" in shown
    assert "Still to collect 3 × Celadon tea cup The voucher stays valid for the rest." in shown
    assert counts(order) == {"tea": (2, 2), "cup": (1, 4)}
    assert Order.objects.get(pk=order.pk).status == OS.PAID

    # Later: the page says a part was collected (when, where, by whom) and offers the rest
    again = look_up(client, order.pickup_code)
    shown = text(again)
    assert "OK to hand over the rest" in shown
    assert re.search(r"Collected already \d\d-\d\d \d\d:\d\d at Lotus Xintiandi by wang\.fang "
                     r"2 × West Lake Longjing tea 250g, 1 × Celadon tea cup", shown), shown
    assert "3 left" in shown and "✓ collected" in shown
    rest = form_of(again)
    assert f"qty-{tea.pk}" not in rest and rest[f"qty-{cup.pk}"] == "3"
    done = client.post("/cashier/redeem/", rest, follow=True)
    assert "Handed over" in text(done) and 'id="still-left"' not in done.content.decode()
    assert Order.objects.get(pk=order.pk).status == OS.PICKED_UP
    assert Redemption.objects.filter(order=order).count() == 2


def test_a_stale_form_asking_for_more_than_is_left_shows_the_order_again_naming_the_line(shop):
    order = shop.order()
    cup = lines_of(order)["cup"]
    phone, counter = signed_in(shop.cashier), signed_in(staff(shop.merchant, "cashier", [shop.xtd]))
    fields = form_of(look_up(phone, order.pickup_code))
    # meanwhile a colleague hands one cup over
    counter.post("/cashier/redeem/", {**form_of(look_up(counter, order.pickup_code)), **{
        k: "0" for k in fields if k.startswith("qty-")}, f"qty-{cup.pk}": "1"})
    response = phone.post("/cashier/redeem/", fields)
    assert response.status_code == 409
    shown = text(response)
    assert "Celadon tea cup: 2 asked for, only 1 left to hand over." in shown
    assert "OK to hand over the rest" in shown and 'id="hand-over"' in response.content.decode()
    assert form_of(response)[f"qty-{cup.pk}"] == "1"  # the form now offers what is really left
    assert counts(order) == {"tea": (0, 1), "cup": (1, 2)}


def test_nothing_chosen_or_not_a_number_is_refused_and_changes_nothing(shop):
    order = shop.order()
    tea, cup = lines_of(order).values()
    client = signed_in(shop.cashier)
    fields = form_of(look_up(client, order.pickup_code))
    zero = client.post("/cashier/redeem/", {**fields, f"qty-{tea.pk}": "0", f"qty-{cup.pk}": "0"})
    assert zero.status_code == 400 and "Choose at least one unit to hand over." in text(zero)
    junk = client.post("/cashier/redeem/", {**fields, f"qty-{cup.pk}": "two"})
    assert junk.status_code == 400
    assert "Celadon tea cup: say how many, once, as a whole number (0 or more)." in text(junk)
    assert counts(order) == {"tea": (0, 1), "cup": (0, 2)} and not Redemption.objects.exists()


def test_the_steppers_are_big_enough_to_tap_and_say_what_they_do(shop):
    order = shop.order()
    html = look_up(signed_in(shop.cashier), order.pickup_code).content.decode()
    assert html.count('class="step" data-step="-1" aria-label="One fewer"') == 2
    assert 'aria-label="How many Celadon tea cup to hand over now"' in html
    assert 'data-part="Hand over {n} of {m}"' in html
