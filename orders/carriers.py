"""Express carriers and their tracking numbers: which carriers staff may name, and what a tracking number
may look like. Pure rules, no database: the ship form, the CSV import and the services all read them here.

Order.carrier stores the carrier's code (SF, JD, ...); people see the name in their language.
"""

import re
import unicodedata

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# code -> name. The codes are the ones kuaidi100 and the carriers' own APIs use for the big national
# carriers; "OTHER" is for a local courier, with the tracking number still required.
CARRIERS: dict[str, str] = {
    "SF": gettext_lazy("SF Express"),
    "JD": gettext_lazy("JD Logistics"),
    "ZTO": gettext_lazy("ZTO Express"),
    "YTO": gettext_lazy("YTO Express"),
    "STO": gettext_lazy("STO Express"),
    "YUNDA": gettext_lazy("Yunda Express"),
    "EMS": gettext_lazy("China Post EMS"),
    "JTSD": gettext_lazy("J&T Express"),
    "DBL": gettext_lazy("Deppon Express"),
    "OTHER": gettext_lazy("Other carrier"),
}

# What staff type in a spreadsheet besides the code: the names as printed on the waybills, Chinese
# first. Matched after NFKC and case folding, so "ｓｆ" and "Sf" are SF too.
_ALIASES: dict[str, str] = {
    "顺丰": "SF", "顺丰速运": "SF", "顺丰快递": "SF", "sf express": "SF", "shunfeng": "SF",
    "京东": "JD", "京东物流": "JD", "京东快递": "JD", "jd logistics": "JD", "jingdong": "JD",
    "中通": "ZTO", "中通快递": "ZTO", "zto express": "ZTO", "zhongtong": "ZTO",
    "圆通": "YTO", "圆通速递": "YTO", "圆通快递": "YTO", "yto express": "YTO", "yuantong": "YTO",
    "申通": "STO", "申通快递": "STO", "sto express": "STO", "shentong": "STO",
    "韵达": "YUNDA", "韵达快递": "YUNDA", "yunda express": "YUNDA",
    "邮政": "EMS", "中国邮政": "EMS", "邮政ems": "EMS", "china post": "EMS", "china post ems": "EMS",
    "极兔": "JTSD", "极兔速递": "JTSD", "j&t": "JTSD", "j&t express": "JTSD", "jt": "JTSD",
    "德邦": "DBL", "德邦快递": "DBL", "deppon": "DBL", "deppon express": "DBL",
    "其他": "OTHER", "其它": "OTHER", "other": "OTHER", "other carrier": "OTHER",
}  # fmt: skip

# Tracking numbers of Chinese carriers are 10-20 letters and digits (SF1234567890123, JDVA01234567890,
# 773012345678901, EA123456789CN); a local courier's may be shorter or carry a hyphen. Anything else
# (spaces inside, punctuation, a phone number pasted into the wrong column) is a mistake worth stopping.
TRACKING_MIN, TRACKING_MAX = 6, 32
_TRACKING = re.compile(r"[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?", re.ASCII)


class CarrierInvalid(ValueError):
    """The message says what is wrong and what is accepted, for the person who typed it."""


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


_BY_FOLDED = {**{code.casefold(): code for code in CARRIERS}, **_ALIASES}


def carrier_choices() -> list[tuple[str, str]]:
    return [(code, f"{name} ({code})" if code != "OTHER" else str(name)) for code, name in CARRIERS.items()]


def carrier_name(code: str) -> str:
    """The carrier's name for people; an unknown stored code is shown as it is."""
    return str(CARRIERS.get(code, code))


def carrier_parse(text: str) -> str:
    """The carrier's code from what someone typed (code or name, any case, half- or full-width)."""
    folded = _fold(text or "")
    if not folded:
        raise CarrierInvalid(_("Enter the carrier."))
    code = _BY_FOLDED.get(folded) or _BY_FOLDED.get(folded.replace(" ", ""))
    if code is None:
        raise CarrierInvalid(
            _("Unknown carrier “%(carrier)s”; use one of %(codes)s.")
            % {"carrier": text.strip()[:40], "codes": ", ".join(CARRIERS)}
        )
    return code


def tracking_number_parse(text: str) -> str:
    """The tracking number as stored: full-width characters made half-width, surrounding spaces
    trimmed, letters in capitals; refused if it cannot be a waybill number."""
    value = unicodedata.normalize("NFKC", text or "").strip().upper()
    if not value:
        raise CarrierInvalid(_("Enter the tracking number."))
    if not (TRACKING_MIN <= len(value) <= TRACKING_MAX):
        raise CarrierInvalid(
            _("A tracking number has %(min)d to %(max)d characters; this one has %(n)d.")
            % {"min": TRACKING_MIN, "max": TRACKING_MAX, "n": len(value)}
        )
    if not _TRACKING.fullmatch(value):
        raise CarrierInvalid(_("A tracking number has only letters, digits and inner hyphens."))
    if not any(ch.isdigit() for ch in value):
        raise CarrierInvalid(_("A tracking number has digits in it."))
    return value
