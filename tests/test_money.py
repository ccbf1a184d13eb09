"""o2o/money.py: Decimal amounts in and out of provider minor units (fen), property-tested."""

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from o2o.money import (
    CURRENCY_MINOR_UNITS,
    MoneyError,
    minor_from_text,
    money_from_minor,
    money_from_text,
    money_quantize,
    money_to_minor,
)

# Far beyond any real order (DecimalField(max_digits=12)) but inside Decimal's 28 digits.
LARGEST_MINOR = 10**18

minor_units = st.integers(min_value=-LARGEST_MINOR, max_value=LARGEST_MINOR)
known_currencies = st.sampled_from(sorted(CURRENCY_MINOR_UNITS))


def amounts(currency: str):
    """Decimals with exactly the currency's places, as a price or a payment is stored."""
    places = CURRENCY_MINOR_UNITS[currency]
    return minor_units.map(lambda n: Decimal(n).scaleb(-places))


# --------------------------------------------------------------------------- round trips


@given(amount=amounts("CNY"))
@example(amount=Decimal("0.01"))
@example(amount=Decimal("-0.01"))
@example(amount=Decimal("19.90"))
def test_cny_amount_survives_the_trip_to_fen_and_back(amount):
    fen = money_to_minor(amount, "CNY")

    assert isinstance(fen, int)
    assert fen == amount * 100
    back = money_from_minor(fen, "CNY")
    assert back == amount
    # Two places on the way back, so "19.90" prints as 19.90 and not 19.9.
    assert back.as_tuple().exponent == -2


@given(amount=amounts("JPY"))
@example(amount=Decimal("1"))
def test_jpy_amount_has_no_minor_unit_and_survives_the_trip(amount):
    yen = money_to_minor(amount, "JPY")

    assert yen == amount
    back = money_from_minor(yen, "JPY")
    assert back == amount
    assert back.as_tuple().exponent == 0


@given(minor=minor_units, currency=st.sampled_from(["CNY", "JPY"]))
def test_minor_units_survive_the_trip_to_an_amount_and_back(minor, currency):
    assert money_to_minor(money_from_minor(minor, currency), currency) == minor


def test_minor_unit_examples_a_provider_sends():
    assert money_from_minor(1234, "CNY") == Decimal("12.34")
    assert money_from_minor(1, "CNY") == Decimal("0.01")
    assert money_from_minor(1234, "JPY") == Decimal("1234")
    assert money_to_minor(Decimal("12.340"), "CNY") == 1234  # trailing zeros are not extra precision
    assert money_to_minor("268.00", "CNY") == 26800


# --------------------------------------------------------------------------- rounding


@given(thousandths=st.integers(min_value=-(10**15), max_value=10**15))
@example(thousandths=5)  # 0.005 -> 0.01
@example(thousandths=-5)  # -0.005 -> -0.01 (half away from zero, as a refund mirrors a charge)
@example(thousandths=2675)  # 2.675 -> 2.68, where binary floats give 2.67
@example(thousandths=2674)
def test_quantize_rounds_half_up_to_the_fen(thousandths):
    amount = Decimal(thousandths).scaleb(-3)
    # Reference in integers: half-up on the magnitude, sign put back afterwards.
    sign = -1 if thousandths < 0 else 1
    expected_fen = sign * ((abs(thousandths) + 5) // 10)

    assert money_quantize(amount, "CNY") == Decimal(expected_fen).scaleb(-2)
    assert money_quantize(-amount, "CNY") == -money_quantize(amount, "CNY")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("0.5", "1"), ("1.5", "2"), ("2.5", "3"), ("-0.5", "-1"), ("0.49", "0")],
)
def test_quantize_rounds_half_up_to_the_yen_not_to_even(amount, expected):
    assert money_quantize(Decimal(amount), "JPY") == Decimal(expected)


# --------------------------------------------------------------------------- refusals


@given(amount=st.floats(), currency=known_currencies)
@example(amount=0.1, currency="CNY")
@example(amount=12.0, currency="JPY")
def test_floats_are_refused_everywhere(amount, currency):
    with pytest.raises(MoneyError):
        money_quantize(amount, currency)
    with pytest.raises(MoneyError):
        money_to_minor(amount, currency)
    with pytest.raises(MoneyError):
        money_from_minor(amount, currency)


@pytest.mark.parametrize("flag", [True, False])
def test_booleans_are_not_amounts(flag):
    # bool is an int subclass: without a check, money_to_minor(True, "CNY") would be 100 fen.
    with pytest.raises(MoneyError):
        money_quantize(flag, "CNY")
    with pytest.raises(MoneyError):
        money_to_minor(flag, "CNY")
    with pytest.raises(MoneyError):
        money_from_minor(flag, "CNY")


@given(fen=minor_units, extra=st.integers(min_value=1, max_value=9))
@example(fen=1234, extra=5)
def test_cny_amount_with_a_third_place_is_refused_not_rounded(fen, extra):
    amount = Decimal(fen * 10 + extra).scaleb(-3)  # e.g. 12.345: not a sum a provider can charge

    with pytest.raises(MoneyError, match="decimal places"):
        money_to_minor(amount, "CNY")


@given(yen=minor_units, tenths=st.integers(min_value=1, max_value=9))
def test_jpy_amount_with_any_fraction_is_refused(yen, tenths):
    with pytest.raises(MoneyError):
        money_to_minor(Decimal(yen * 10 + tenths).scaleb(-1), "JPY")


@pytest.mark.parametrize("amount", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf"])
def test_non_finite_amounts_are_refused(amount):
    with pytest.raises(MoneyError):
        money_quantize(Decimal(amount), "CNY")
    with pytest.raises(MoneyError):
        money_quantize(amount, "CNY")
    with pytest.raises(MoneyError):
        money_to_minor(Decimal(amount), "CNY")


@pytest.mark.parametrize("amount", ["", "12,34", "twelve", "¥12", None, [12]])
def test_things_that_are_not_amounts_are_refused(amount):
    with pytest.raises(MoneyError):
        money_quantize(amount, "CNY")
    with pytest.raises(MoneyError):
        money_to_minor(amount, "CNY")


@pytest.mark.parametrize("amount", [Decimal("1E+30"), Decimal("1E+26"), "9" * 40])
def test_amounts_beyond_decimal_precision_are_a_money_error(amount):
    # Callers catch MoneyError; a bare decimal.InvalidOperation would slip past them.
    with pytest.raises(MoneyError):
        money_quantize(amount, "CNY")
    with pytest.raises(MoneyError):
        money_to_minor(amount, "CNY")


def test_minor_units_beyond_decimal_precision_are_a_money_error():
    with pytest.raises(MoneyError):
        money_from_minor(10**30, "CNY")


@given(currency=st.text(max_size=5).filter(lambda code: code not in CURRENCY_MINOR_UNITS))
@example(currency="RMB")  # the everyday name, not the ISO code
@example(currency="cny")
@example(currency="")
def test_unknown_currency_is_refused(currency):
    with pytest.raises(MoneyError, match="unknown currency"):
        money_quantize(Decimal("1.00"), currency)
    with pytest.raises(MoneyError, match="unknown currency"):
        money_to_minor(Decimal("1.00"), currency)
    with pytest.raises(MoneyError, match="unknown currency"):
        money_from_minor(100, currency)


# --------------------------------------------------------------------------- amounts as bills write them


@given(
    sign=st.sampled_from(["", "-", "+"]),
    whole=st.integers(min_value=0, max_value=10**12 - 1),
    fraction=st.text(alphabet="0123456789", max_size=5),
    currency=known_currencies,
)
@example(sign="", whole=12, fraction="30", currency="CNY")
@example(sign="-", whole=0, fraction="005", currency="CNY")
@example(sign="", whole=1, fraction="5", currency="JPY")
def test_amount_text_reads_exactly_as_decimal_would(sign, whole, fraction, currency):
    text = f"{sign}{whole}" + (f".{fraction}" if fraction else "")
    value = Decimal(text)
    try:
        exact = money_to_minor(value, currency)
    except MoneyError:
        exact = None
    try:
        read = minor_from_text(text, currency)
    except MoneyError:
        read = None
    assert read == exact
    # rounded as providers round fees: half away from zero, to the currency's unit
    rounded = money_to_minor(money_quantize(value, currency), currency)
    assert minor_from_text(text, currency, round_half_up=True) == rounded
    if exact is not None:
        as_money = money_from_text(text, currency)
        assert as_money == value and as_money.as_tuple().exponent == -CURRENCY_MINOR_UNITS[currency]


@pytest.mark.parametrize(
    "text", ["", " 1.00", "1.00 ", "1e3", "1,000.00", "１.００", ".5", "5.", "1.000001", "NaN", "--1", "1234567890123"]
)
def test_anything_but_plain_digits_is_not_an_amount(text):
    with pytest.raises(MoneyError):
        minor_from_text(text, "CNY", round_half_up=True)


def test_finer_places_count_in_their_own_units():
    assert minor_from_text("-0.06000", "CNY", places=5) == -6000
    with pytest.raises(MoneyError, match="more than 4 decimal places"):
        minor_from_text("0.06001", "CNY", places=4)
