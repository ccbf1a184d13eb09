"""Unguessable public codes: wall codes on QR posters, pickup voucher codes, order links.

The alphabet leaves out 0/O, 1/I/L and U so a code read aloud or typed from a phone screen
cannot be mistyped into another valid code.
"""

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # 30 symbols, ~4.9 bits each

WALL_CODE_LENGTH = 10  # ~49 bits: printed on posters, never typed
VOUCHER_CODE_LENGTH = 10  # ~49 bits (>= 40 asked for); typed at the counter in groups: ABCD-EFGH-JK

_SEPARATORS = re.compile(r"[\s\-_.]")


def random_code(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def order_token() -> str:
    """The secret in an order page's link (128 bits)."""
    return secrets.token_urlsafe(16)


def voucher_code_display(code: str) -> str:
    """'ABCDEFGHJK' -> 'ABCD-EFGH-JK' for people."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def voucher_code_clean(typed: str) -> str:
    """Forgiving of case, spaces and dashes: ' abcd-efgh jk ' -> 'ABCDEFGHJK'."""
    return _SEPARATORS.sub("", typed or "").upper()
