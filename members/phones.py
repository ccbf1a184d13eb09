"""Phone numbers as customers type them, normalised to one spelling (E.164)."""

import re
import unicodedata

from django.utils.translation import gettext as _

from o2o.exceptions import DomainError

_SEPARATORS = re.compile(r"[\s\-().]")
# [0-9], not \d: \d also matches other scripts' digits ("13٨…"), which would be stored as a second,
# non-ASCII spelling of a number (another Member) that no provider or SMS gateway can use.
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


class InvalidPhone(DomainError):
    code = "invalid_phone"


def phone_normalize(raw: str) -> str:
    """'138 1234-5678', '+86 138…', '0086138…' -> '+8613812345678'. Other countries need a leading +."""
    # Chinese input methods type full-width digits, plus and dash ("１３８－…", "＋８６"): NFKC folds
    # them to ASCII so they name the same member as the half-width spelling.
    phone = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw or ""))
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if phone.startswith("+86"):
        national = phone[3:]
        if _CN_MOBILE.fullmatch(national):
            return "+86" + national
        raise InvalidPhone(_("“%(phone)s” is not a mainland China mobile number (11 digits starting with 1).") % {
            "phone": raw})
    if _CN_MOBILE.fullmatch(phone):
        return "+86" + phone
    if _E164.fullmatch(phone):
        return phone
    raise InvalidPhone(_("“%(phone)s” is not a phone number we can reach: use 11 digits (e.g. 138 1234 5678) or "
                         "+country code and number.") % {"phone": raw})
