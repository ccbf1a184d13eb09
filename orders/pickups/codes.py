"""Reading a pickup voucher code from whatever the counter got: a typed code, a scanner's keystrokes,
or the voucher QR's whole URL."""

import unicodedata
from urllib.parse import parse_qs, urlsplit

from ..codes import ALPHABET, VOUCHER_CODE_LENGTH, voucher_code_clean

_ALPHABET = frozenset(ALPHABET)
# Dashes a phone keyboard or an input method may type instead of "-" (NFKC leaves these alone).
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70", "-"))
# Far longer than any voucher URL: a scanner that never sent Enter, or a paste of a whole page.
_MAX_INPUT = 500


def voucher_code_parse(text: str) -> str:
    """'abcd-efgh jk', 'ＡＢＣＤ－ＥＦＧＨ－ＪＫ' or 'https://…/cashier/?code=ABCDEFGHJK' -> 'ABCDEFGHJK'.

    Never raises: what is not a code comes back as some other string, which no voucher has. Full-width
    letters (a Chinese input method) are folded to ASCII first.
    """
    text = unicodedata.normalize("NFKC", (text or "")[:_MAX_INPUT]).translate(_DASHES).strip()
    if "?" in text or "://" in text or text.startswith("/"):
        text = _code_from_url(text)
    return voucher_code_clean(text)


def _code_from_url(text: str) -> str:
    parts = urlsplit(text)
    codes = parse_qs(parts.query).get("code")
    if codes:
        return codes[0]
    # A URL without ?code= names no voucher; its last path segment is as good a guess as any.
    return parts.path.rstrip("/").rsplit("/", 1)[-1]


def voucher_code_is_wellformed(code: str) -> bool:
    """Could be a voucher code at all (length and alphabet): anything else is unknown without a query."""
    return len(code) == VOUCHER_CODE_LENGTH and all(char in _ALPHABET for char in code)
