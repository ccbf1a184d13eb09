"""Simplified Chinese: the catalogue is complete and compiled, and customers and staff see Chinese.

The .po and the compiled .mo are both committed (machines without gettext still get translations),
so these tests also check that the .mo says what the .po says, and that every message our code marks
is in the .po. After marking new strings:

    .venv/bin/python manage.py makemessages -l zh_Hans --no-obsolete -i tests -i var -i node_modules -i static
    (translate what it added or marked fuzzy)
    .venv/bin/python manage.py compilemessages -l zh_Hans

Only the django domain: djangojs.po holds Django admin strings our code does not mark, which a
makemessages -d djangojs would drop.
"""

import ast
import gettext
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from orders.models import Promotion
from tests.factories import MerchantFactory, StoreFactory, promotion, staff

LC_MESSAGES = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
MO = LC_MESSAGES / "django.mo"
# djangojs: the admin's JavaScript strings Django's own zh_Hans catalogue lacks (our code marks none).
DOMAINS = ["django", "djangojs"]
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")


# --------------------------------------------------------------------------- the .po file


def po_entries(path: Path = PO) -> list[dict]:
    """The entries of a .po file (header included, obsolete `#~` entries left out): msgid,
    msgid_plural, msgstr or msgstr[n], and their flags."""
    entries = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        entry, key, flags = {"flags": set()}, None, set()
        for line in block.strip().splitlines():
            if line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif match := re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$', line):
                key = match.group(1)
                entry[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and key:
                entry[key] += ast.literal_eval(line)
            else:
                raise AssertionError(f"cannot read this line of {path.name}: {line!r}")
        if "msgid" in entry:
            entry["flags"] = flags
            entries.append(entry)
    return entries


def messages(domain: str = "django") -> list[dict]:
    return [e for e in po_entries(LC_MESSAGES / f"{domain}.po") if e["msgid"]]


def msgstrs(entry: dict) -> list[str]:
    return [value for key, value in sorted(entry.items()) if key.startswith("msgstr")]


def test_the_catalogue_exists_and_is_not_trivial():
    assert PO.exists() and MO.exists()
    assert len(messages()) > 200


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_header_declares_chinese_with_one_plural_form(domain):
    header = next(e for e in po_entries(LC_MESSAGES / f"{domain}.po") if e["msgid"] == "")
    assert "fuzzy" not in header["flags"]
    assert "Language: zh_Hans\n" in header["msgstr"]
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header["msgstr"]
    assert "charset=UTF-8" in header["msgstr"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_message_is_translated_and_none_is_fuzzy(domain):
    untranslated = [e["msgid"] for e in messages(domain) if not all(s.strip() for s in msgstrs(e))]
    fuzzy = [e["msgid"] for e in messages(domain) if "fuzzy" in e["flags"]]
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"


def test_plural_messages_have_exactly_the_one_chinese_form():
    plurals = [e for e in messages() if "msgid_plural" in e]
    assert plurals
    for entry in plurals:
        assert [k for k in entry if k.startswith("msgstr")] == ["msgstr[0]"], entry["msgid"]


def test_translations_keep_every_placeholder():
    for entry in messages():
        wanted = set(PLACEHOLDER.findall(entry["msgid"])) | set(PLACEHOLDER.findall(entry.get("msgid_plural", "")))
        for translated in msgstrs(entry):
            assert set(PLACEHOLDER.findall(translated)) == wanted, (entry["msgid"], translated)
            assert translated.count("%") == len(PLACEHOLDER.findall(translated)), (entry["msgid"], translated)


def test_translations_are_chinese():
    """Names that stay as they are in Chinese apps (SKU, API, Logo) are the only Latin-only ones."""
    latin_only = {e["msgid"] for e in messages() if not re.search(r"[\u4e00-\u9fff]", msgstrs(e)[0])}
    assert latin_only <= {"SKU", "API", "logo"}, latin_only


# --------------------------------------------------------------------------- what our code marks

# Where makemessages looks for our messages (tests, .venv and var are not ours to translate).
APPS = ["o2o", "merchants", "orders", "members"]
TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates", *(Path(settings.BASE_DIR) / app / "templates" for app in APPS)]
# The keywords makemessages gives xgettext, as (msgctxt, msgid, msgid_plural) argument positions.
KEYWORDS = {
    "_": (None, 0, None), "gettext": (None, 0, None), "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1), "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None), "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2), "npgettext_lazy": (0, 1, 2),
}
# templatize() turns a template's {% translate %}, {% blocktranslate %} and _("...") into calls like
# `gettext(u'...')`, `npgettext(u'ctx', u'...', u'...', count)`: their leading literal arguments.
LITERAL = r"""u?(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
TEMPLATE_CALL = re.compile(rf"\b({'|'.join(KEYWORDS)})\(\s*({LITERAL}(?:\s*,\s*{LITERAL})*)")


def message_key(keyword: str, literals: list[str]) -> tuple[str | None, str, str | None] | None:
    """(msgctxt, msgid, msgid_plural) of a call's literal arguments, or None if one is not a literal."""
    positions = KEYWORDS[keyword]
    if max(p for p in positions if p is not None) >= len(literals):
        return None
    return tuple(None if p is None else literals[p] for p in positions)


def marked_in_python(path: Path) -> tuple[list[tuple], list[str]]:
    """The messages a module marks, each with its line, and the marking calls xgettext cannot read
    (an f-string, a variable or a concatenation where a literal should be: never translated)."""
    found, unreadable = [], []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in KEYWORDS:
            continue
        literals = []
        for arg in node.args:
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                break
            literals.append(arg.value)
        key = message_key(name, literals)
        if key is None:
            unreadable.append(f"{path.relative_to(settings.BASE_DIR)}:{node.lineno}: {ast.unparse(node)[:100]}")
        else:
            found.append((key, node.lineno))
    return found, unreadable


def marked_in_template(path: Path) -> list[tuple]:
    from django.utils.translation.template import templatize

    source = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    found = []
    for match in TEMPLATE_CALL.finditer(source):
        literals = [ast.literal_eval(arg) for arg in re.findall(LITERAL, match.group(2))]
        if (key := message_key(match.group(1), literals)) is not None:
            found.append((key, source.count("\n", 0, match.start()) + 1))
    return found


def marked_messages() -> tuple[dict[tuple, list[str]], list[str]]:
    """Every (msgctxt, msgid, msgid_plural) our apps and templates mark, with the places that mark it,
    and the marking calls no extractor can read."""
    base = Path(settings.BASE_DIR)
    marked, unreadable = {}, []

    def add(path: Path, found: list[tuple]) -> None:
        for key, line in found:
            marked.setdefault(key, []).append(f"{path.relative_to(base)}:{line}")

    for path in (path for app in APPS for path in sorted((base / app).rglob("*.py"))):
        found, cannot = marked_in_python(path)
        add(path, found)
        unreadable += cannot
    for folder in (folder for folder in TEMPLATE_DIRS if folder.is_dir()):
        for path in sorted(folder.rglob("*")):
            if path.suffix in {".html", ".txt"}:
                add(path, marked_in_template(path))
    return marked, unreadable


def test_every_message_our_code_marks_is_in_the_catalogue():
    """A string marked in code but missing from the .po is shown in English to Chinese users, and no
    other test notices: run makemessages (see the module docstring) and translate what it adds."""
    marked, _unreadable = marked_messages()
    assert len(marked) > 200  # the extraction itself works
    in_po = {(e.get("msgctxt"), e["msgid"], e.get("msgid_plural")) for e in messages()}
    # A msgid marked both with and without a plural gets one plural entry (xgettext merges them), and
    # gettext() of it reads that entry's form for 1: the singular use is in the catalogue too.
    in_po |= {(ctx, msgid, None) for ctx, msgid, _plural in in_po}
    missing = sorted(
        ((places[0], key) for key, places in marked.items() if key not in in_po),
        key=lambda item: (item[0].rsplit(":", 1)[0], int(item[0].rsplit(":", 1)[1])),
    )
    report = "\n".join(
        f"  {place}: "
        + (f"[{ctx}] " if ctx else "")
        + repr(msgid)
        + (f" / plural {plural!r}" if plural else "")
        for place, (ctx, msgid, plural) in missing
    )
    assert not missing, f"{len(missing)} marked messages are not in {PO.name}:\n{report}"


def test_marked_messages_are_literal_strings():
    """gettext(f"...") or gettext(variable) is never extracted, so it is never translated."""
    _marked, unreadable = marked_messages()
    assert not unreadable, "marked, but not with a literal string:\n" + "\n".join(unreadable)


# --------------------------------------------------------------------------- the compiled .mo


@pytest.mark.skipif(not shutil.which("msgfmt"), reason="gettext's msgfmt is not installed")
@pytest.mark.parametrize("domain", DOMAINS)
def test_msgfmt_accepts_the_po(domain):
    result = subprocess.run(
        ["msgfmt", "--check", "-o", "/dev/null", str(LC_MESSAGES / f"{domain}.po")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_committed_mo_says_what_the_po_says(domain):
    """A .po edited without compilemessages would leave Chinese users reading stale text."""
    with (LC_MESSAGES / f"{domain}.mo").open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    stale = []
    for entry in messages(domain):
        # The .mo keys a message with a context as "context\x04msgid".
        key = f"{entry['msgctxt']}\x04{entry['msgid']}" if "msgctxt" in entry else entry["msgid"]
        if "msgid_plural" in entry:
            if catalog.get((key, 0)) != entry["msgstr[0]"]:
                stale.append(entry["msgid"])
        elif catalog.get(key) != entry["msgstr"]:
            stale.append(entry["msgid"])
    assert not stale, f"{domain}.mo is out of date (run compilemessages): {stale}"
    in_po = {e["msgid"] for e in messages(domain)}
    extra = {(k if isinstance(k, str) else k[0]).split("\x04")[-1] for k in catalog if k} - in_po
    assert not extra, f"{domain}.mo has messages the .po no longer has: {extra}"


def test_django_loads_our_catalogue():
    with translation.override("zh-hans"):
        assert translation.gettext("Pickup voucher") == "提货凭证"
        assert translation.ngettext("%(left)s left", "%(left)s left", 3) % {"left": 3} == "剩余 3 份"
        assert str(Promotion._meta.verbose_name) == "促销活动"
    with translation.override("en"):
        assert translation.gettext("Pickup voucher") == "Pickup voucher"


# --------------------------------------------------------------------------- what people see


@pytest.fixture
def offer(db):
    merchant = MerchantFactory(slug="lotus", name="Lotus")
    store = StoreFactory(merchant=merchant, code="xtd")
    return promotion(merchant, stores=[store], per_member_limit=3), store


@pytest.mark.django_db
def test_landing_page_in_chinese(client, offer):
    promo, store = offer
    html = client.get(f"/p/{promo.wall_code}?s={store.code}", **ZH).content.decode()
    for label in ("数量", "手机号", "收货方式", "自提门店", "到店自提"):
        assert f">{label}<" in html or f">{label}" in html, label
    assert re.search(r'<button[^>]*id="pay"[^>]*>支付 ¥', html)
    assert "每人限购 3 份" in html
    assert "Quantity" not in html and "Mobile phone" not in html and ">Pay " not in html


@pytest.mark.django_db
def test_landing_page_in_english_for_english_phones(client, offer):
    promo, store = offer
    html = client.get(f"/p/{promo.wall_code}?s={store.code}", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Quantity" in html and "Mobile phone" in html and re.search(r'id="pay"[^>]*>Pay ¥', html)
    assert "数量" not in html and "手机号" not in html


@pytest.mark.django_db
def test_the_landing_pages_of_two_languages_are_not_mixed_up(client, offer):
    """The landing page is rendered once and reused: the language must be part of what is reused."""
    promo, store = offer
    url = f"/p/{promo.wall_code}?s={store.code}"
    assert "数量" in client.get(url, **ZH).content.decode()
    assert "Quantity" in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "数量" in client.get(url, **ZH).content.decode()


@pytest.mark.django_db
def test_an_order_error_is_shown_in_chinese(client, offer):
    promo, store = offer
    url = f"/p/{promo.wall_code}?s={store.code}"
    page = client.get(url, **ZH).content.decode()
    keys = {
        name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1) for name in ("submit_key", "scan")
    }
    response = client.post(
        url,
        {**keys, "quantity": 1, "phone": "12345", "fulfilment": "pickup", "pickup_store": store.code},
        **ZH,
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "“12345”不是有效的手机号码" in html
    assert "is not a phone number" not in html


@pytest.mark.django_db
def test_admin_index_for_a_manager_names_our_apps_and_models_in_chinese(client):
    merchant = MerchantFactory(slug="lotus", name="Lotus")
    client.force_login(staff(merchant, "manager"))
    response = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    html = response.content.decode()
    with translation.override("zh-hans"):
        promotions = str(Promotion._meta.verbose_name_plural)
    assert promotions == "促销活动"
    for text in (promotions, "促销与订单", "商户设置", "商品", "门店", "订单", "O2O 商户管理平台", "商户管理"):
        assert text in html, text
    assert "Promotions and orders" not in html and "Merchant setup" not in html


@pytest.mark.django_db
def test_the_admin_two_box_selector_speaks_chinese(client):
    """Django's zh_Hans catalogue lacks the selector's strings (e.g. a promotion's pickup stores); ours adds them."""
    merchant = MerchantFactory(slug="lotus", name="Lotus")
    client.force_login(staff(merchant, "manager"))
    script = client.get("/admin/jsi18n/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    # The catalogue is JSON with \u escapes, as json.dumps writes it.
    for msgid, msgstr in [("Choose all %s", "全选%s"), ("Remove all %s", "删除全部%s"), ("Remove", "删除")]:
        assert f"{json.dumps(msgid)}: {json.dumps(msgstr)}" in script, msgid
