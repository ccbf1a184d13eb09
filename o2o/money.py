"""Money is Decimal in the merchant's currency, quantised to the currency's minor unit.

Providers speak in integer minor units (fen for CNY); these two functions are the only
place where amounts cross that line.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units of the currencies a merchant may choose.
CURRENCY_MINOR_UNITS: dict[str, int] = {"CNY": 2, "HKD": 2, "USD": 2, "EUR": 2, "JPY": 0}


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
