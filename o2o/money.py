"""Money is Decimal in the merchant's currency, quantised to the currency's minor unit.

Providers speak in integer minor units (fen for CNY); these two functions are the only
place where amounts cross that line.
"""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units of the currencies a merchant may choose.
CURRENCY_MINOR_UNITS: dict[str, int] = {"CNY": 2, "HKD": 2, "USD": 2, "EUR": 2, "JPY": 0}


# An amount as providers write them: digits only (no exponent, no thousands separators, no full-width
# digits: re.ASCII), an optional sign, at most twelve digits before the point and five after it (WeChat Pay
# pads fees to five places).
_AMOUNT_TEXT = re.compile(r"([+-]?)(\d{1,12})(?:\.(\d{1,5}))?", re.ASCII)


class MoneyError(ValueError):
    """An amount that is not a valid sum of money in its currency."""


def minor_unit_exponent(currency: str) -> int:
    try:
        return CURRENCY_MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


def money_quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit. Floats are refused: they are not money."""
    if isinstance(amount, float):
        raise MoneyError("money must not be a float")
    if isinstance(amount, bool):
        # bool is an int: True would otherwise be 1.00, and 100 fen at the provider.
        raise MoneyError(f"{amount!r} is not an amount")
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise MoneyError(f"{amount!r} is not an amount") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not a finite amount")
    exponent = minor_unit_exponent(currency)
    try:
        return value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        # More digits than the decimal context holds: callers handle MoneyError, not this.
        raise MoneyError(f"{amount!r} is too large an amount") from None


def money_to_minor(amount: Decimal, currency: str) -> int:
    """Decimal('12.34') CNY -> 1234 fen. Refuses amounts with more precision than the currency has."""
    exponent = minor_unit_exponent(currency)
    quantised = money_quantize(amount, currency)
    if quantised != Decimal(amount):
        raise MoneyError(f"{amount} has more than {exponent} decimal places for {currency}")
    return int(quantised.scaleb(exponent))


def money_from_minor(minor: int, currency: str) -> Decimal:
    """1234 fen -> Decimal('12.34') CNY."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"{minor!r} is not a whole number of minor units")
    return money_quantize(Decimal(minor).scaleb(-minor_unit_exponent(currency)), currency)


def minor_from_text(text: str, currency: str, *, round_half_up: bool = False, places: int | None = None) -> int:
    """ "12.30" CNY -> 1230 fen, exactly: the same as money_to_minor(Decimal(text)), done on the digits
    (a statement holds millions of amounts, and Decimal arithmetic per cell was most of its parsing time).

    More precision than the currency has ("12.301") is refused, or with `round_half_up` rounded half away
    from zero as providers round fees. `places` counts in finer units than the currency's (5 for WeChat
    Pay's fee column, written to five places). Never a float anywhere.
    """
    match = _AMOUNT_TEXT.fullmatch(text)
    if match is None:
        raise MoneyError(f"{text!r} is not an amount")
    if places is None:
        places = minor_unit_exponent(currency)
    sign, whole, fraction = match.groups()
    if fraction is not None and len(fraction) == places:  # "12.30": the common case, fewest steps
        return -int(whole + fraction) if sign == "-" else int(whole + fraction)
    fraction = fraction or ""
    kept, rest = fraction[:places].ljust(places, "0"), fraction[places:]
    minor = int(whole + kept)
    if rest.strip("0"):
        if not round_half_up:
            raise MoneyError(f"{text!r} has more than {places} decimal places")
        if rest[0] >= "5":
            minor += 1  # half-up rounds away from zero; the sign goes on below
    return -minor if sign == "-" else minor


def money_from_text(text: str, currency: str) -> Decimal:
    """ "12.30" -> Decimal('12.30'), quantised to the currency's minor unit; refused as minor_from_text
    refuses (never through a float)."""
    return money_from_minor(minor_from_text(text, currency), currency)
