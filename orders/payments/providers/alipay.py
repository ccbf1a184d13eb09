"""Alipay (支付宝) open platform: RSA2-signed requests, answers and notifications; the trade-detail bill.

RSA2 is SHA256withRSA (PKCS#1 v1.5) over the parameters sorted by name and joined as
`key=value&...`, empty values left out. Requests sign every parameter but `sign`; asynchronous
notifications are verified over every parameter but `sign` and `sign_type`, URL-decoded. A
synchronous answer is signed over the raw JSON text of its `<method>_response` member.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _

from o2o.money import MoneyError, money_quantize, money_to_minor

from .base import (
    Checkout,
    Notification,
    NotificationRejected,
    NotifyAnswer,
    PaymentProvider,
    ProviderError,
    RefundResult,
    StatementError,
    StatementLine,
    paid_or_ignored,
)
from .csvstream import (
    SHANGHAI,
    amount_minor,
    column_index,
    csv_cells,
    fee_minor,
    local_time,
    peek,
    seekable_stream,
    statement_lines,
)
from .signing import load_private_key, load_public_key, rsa2_sign, rsa2_verify

if TYPE_CHECKING:
    from ..models import Payment, PaymentConfig, Refund

GATEWAY = "https://openapi.alipay.com/gateway.do"
TIMEOUT_SECONDS = 15
# An answer or a day's bill larger than this is not one; refusing it keeps memory bounded.
MAX_ANSWER_BYTES = 256 * 1024 * 1024

PAID_STATES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})  # TRADE_FINISHED may follow TRADE_SUCCESS
TRADE_STATES = PAID_STATES | {"WAIT_BUYER_PAY", "TRADE_CLOSED"}
# Answers that say nothing about the outcome: ask again with the same request number.
UNKNOWN_OUTCOME_CODES = frozenset({"20000"})
UNKNOWN_OUTCOME_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})

# Alipay writes amounts as yuan with at most two places; "1e3", "+2", " 2.00" and "2.001" are refused.
_YUAN = re.compile(r"\d{1,10}(?:\.\d{1,2})?", re.ASCII)

# (url, form-encoded body to POST, or None to GET) -> the answer's bytes. Tests pass a fake;
# nothing in them touches the network.
Transport = Callable[[str, bytes | None], bytes]


def urllib_transport(url: str, data: bytes | None) -> bytes:
    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"} if data is not None else {}
    request = urllib.request.Request(  # noqa: S310 - our gateway, or the bill URL Alipay signed
        url, data=data, method="POST" if data is not None else "GET", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            body = answer.read(MAX_ANSWER_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        raise ProviderError(_("Alipay could not be reached: %(error)s") % {"error": error}) from None
    if len(body) > MAX_ANSWER_BYTES:
        raise ProviderError(_("Alipay's answer is larger than %(limit)s bytes") % {"limit": MAX_ANSWER_BYTES})
    return body


# --------------------------------------------------------------------------- signatures


def sign_content(params: Mapping[str, str], *, exclude: frozenset[str] = frozenset({"sign"})) -> str:
    """The text RSA2 signs: `key=value` sorted by key, joined with `&`, empty values left out."""
    return "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in exclude and params[key] != "")


def notification_sign_content(params: Mapping[str, str]) -> str:
    """What Alipay signed in an asynchronous notification: everything but `sign` and `sign_type`."""
    return sign_content(params, exclude=frozenset({"sign", "sign_type"}))


def raw_members(text: str) -> dict[str, str]:
    """The top-level members of a JSON object as their exact source text.

    Alipay signs the characters of `<method>_response` as it sent them; re-serialising the parsed
    object would change spacing, escapes or key order and break a good signature.
    """
    decoder = json.JSONDecoder()
    members: dict[str, str] = {}
    position = _skip_space(text, 0)
    if text[position : position + 1] != "{":
        raise ValueError("not a JSON object")
    position = _skip_space(text, position + 1)
    if text[position : position + 1] == "}":
        return members
    while True:
        key, position = decoder.raw_decode(text, position)
        if not isinstance(key, str):
            raise ValueError("a member name is not a string")
        position = _skip_space(text, position)
        if text[position : position + 1] != ":":
            raise ValueError("expected ':'")
        start = _skip_space(text, position + 1)
        _value, end = decoder.raw_decode(text, start)
        if key in members:
            raise ValueError(f"member {key!r} appears twice")
        members[key] = text[start:end]
        position = _skip_space(text, end)
        separator = text[position : position + 1]
        if separator == "}":
            if text[position + 1 :].strip():
                raise ValueError("text after the JSON object")
            return members
        if separator != ",":
            raise ValueError("expected ',' or '}'")
        position = _skip_space(text, position + 1)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _yuan_minor(text: str) -> int:
    if not isinstance(text, str) or not _YUAN.fullmatch(text):
        raise MoneyError(f"{text!r} is not an amount in yuan")
    return money_to_minor(Decimal(text), "CNY")


def _yuan(amount: Decimal, currency: str) -> str:
    """Our Decimal as Alipay's `total_amount` ("12.30"); Alipay takes CNY only."""
    if currency != "CNY":
        raise ProviderError(_("Alipay takes CNY, not %(currency)s") % {"currency": currency})
    money_to_minor(amount, currency)  # refuses amounts finer than a fen
    return f"{money_quantize(amount, currency):.2f}"


def _beijing_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def _subject(payment: Payment) -> str:
    try:
        title = payment.order.promotion.title
    except (ObjectDoesNotExist, AttributeError):
        title = ""
    return (title or f"Order {payment.out_trade_no}")[:128]


def _describe(node: Mapping[str, Any]) -> str:
    parts = [str(node.get(key)) for key in ("code", "msg", "sub_code", "sub_msg") if node.get(key)]
    return " / ".join(parts) or "no code"


# --------------------------------------------------------------------------- the provider


class AlipayProvider(PaymentProvider):
    name = "alipay"

    def __init__(
        self, config: PaymentConfig, *, transport: Transport | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__(config)
        self._transport = transport or urllib_transport
        self._clock = clock or time.time

    @cached_property
    def _private_key(self) -> rsa.RSAPrivateKey:
        if not self.config.signing_secret:
            raise ProviderError(_("no app private key is configured for Alipay"))
        return load_private_key(self.config.signing_secret)

    def _alipay_key(self) -> rsa.RSAPublicKey | None:
        text = (self.config.provider_public_keys or {}).get("alipay", "")
        if not text:
            return None
        return load_public_key(text)

    # -- notifications

    def verify_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        params = _form_fields(body)
        signature = params.get("sign", "")
        if not signature:
            raise NotificationRejected(_("the notification has no sign"))
        if params.get("sign_type") != "RSA2":
            raise NotificationRejected(_("sign_type %(get)r is not RSA2") % {"get": params.get("sign_type", "")})
        try:
            key = self._alipay_key()
        except ValueError as error:
            raise NotificationRejected(
                _("the configured Alipay public key is unusable: %(error)s") % {"error": error}
            ) from None
        if key is None:
            raise NotificationRejected(_("no Alipay public key is configured for this merchant"))
        content = notification_sign_content(params).encode(params.get("charset") or "utf-8")
        if not rsa2_verify(content, signature, key):
            raise NotificationRejected(_("sign does not verify with this merchant's Alipay public key"))
        return paid_or_ignored(self._notification(params))

    def _notification(self, params: Mapping[str, str]) -> Notification:
        app_id = params.get("app_id", "")
        if not self.config.app_id:
            raise NotificationRejected(_("no app_id is configured for this merchant's Alipay account"))
        if app_id != self.config.app_id:
            raise NotificationRejected(
                _("app_id %(app_id)r is not this merchant's app (%(app_id2)s)")
                % {"app_id": app_id, "app_id2": self.config.app_id}
            )
        seller_id = params.get("seller_id", "")
        if self.config.merchant_no and seller_id != self.config.merchant_no:
            raise NotificationRejected(
                _("seller_id %(seller_id)r is not this merchant's Alipay account (%(merchant_no)s)")
                % {"seller_id": seller_id, "merchant_no": self.config.merchant_no}
            )
        for field in ("out_trade_no", "trade_no", "trade_status", "total_amount"):
            if not params.get(field):
                raise NotificationRejected(_("%(field)s is missing") % {"field": field})
        state = params["trade_status"]
        if state not in TRADE_STATES:
            raise NotificationRejected(_("trade_status %(state)r is not one Alipay sends") % {"state": state})
        try:
            amount = _yuan_minor(params["total_amount"])
        except MoneyError:
            raise NotificationRejected(
                _("total_amount %(total_amount)r is not an amount") % {"total_amount": params["total_amount"]}
            ) from None
        paid_at = None
        if params.get("gmt_payment"):
            try:
                paid_at = _beijing_time(params["gmt_payment"])
            except ValueError:
                raise NotificationRejected(
                    _("gmt_payment %(gmt_payment)r is not a time") % {"gmt_payment": params["gmt_payment"]}
                ) from None
        return Notification(
            out_trade_no=params["out_trade_no"],
            provider_trade_no=params["trade_no"],
            amount_minor=amount,
            currency="CNY",
            paid=state in PAID_STATES,
            state=state,
            paid_at=paid_at,
        )

    def notify_answer(self, *, accepted: bool) -> NotifyAnswer:
        # Alipay retries (8 times over 25 hours) on anything but the plain text "success".
        return NotifyAnswer(status=200, body="success" if accepted else "fail")

    # -- requests

    def request_params(self, method: str, biz_content: Mapping[str, Any], **extra: str) -> dict[str, str]:
        """The signed public parameters of one gateway call (app_id, method, ..., sign)."""
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": datetime.fromtimestamp(self._clock(), SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
        }
        params.update({key: value for key, value in extra.items() if value})
        params["sign"] = rsa2_sign(sign_content(params).encode("utf-8"), self._private_key)
        return params

    def checkout(
        self, payment: Payment, *, notify_url: str, return_url: str, client_ip: str = "", openid: str = ""
    ) -> Checkout:
        # alipay.trade.wap.pay serves every phone browser; client_ip and openid are WeChat Pay's needs.
        """The signed alipay.trade.wap.pay URL the customer's phone opens; no network."""
        biz = {
            "out_trade_no": payment.out_trade_no,
            "total_amount": _yuan(payment.amount, payment.currency),
            "subject": _subject(payment),
            "product_code": "QUICK_WAP_WAY",
            "quit_url": return_url,
        }
        params = self.request_params("alipay.trade.wap.pay", biz, notify_url=notify_url, return_url=return_url)
        return Checkout(url=f"{GATEWAY}?{urllib.parse.urlencode(params)}", params=params)

    def call(self, method: str, biz_content: Mapping[str, Any]) -> dict[str, Any]:
        """Call the gateway and return the `<method>_response` object once its signature verifies."""
        params = self.request_params(method, biz_content)
        try:
            raw = self._transport(f"{GATEWAY}?charset=utf-8", urllib.parse.urlencode(params).encode("ascii"))
        except ProviderError:
            raise
        except OSError as error:
            raise ProviderError(_("Alipay could not be reached: %(error)s") % {"error": error}) from None
        try:
            text = raw.decode("utf-8")
            members = raw_members(text)
            node_name = method.replace(".", "_") + "_response"
            if node_name not in members:
                error_node = json.loads(members.get("error_response", "{}"))
                raise ProviderError(
                    _("Alipay answered %(method)s with an error: %(answer)s")
                    % {"method": method, "answer": _describe(error_node)}
                )
            raw_node = members[node_name]
            node = json.loads(raw_node)
            signature = json.loads(members["sign"]) if "sign" in members else ""
        except (UnicodeDecodeError, ValueError) as error:
            raise ProviderError(
                _("Alipay's answer to %(method)s is not the JSON it sends: %(error)s")
                % {"method": method, "error": error}
            ) from None
        if not isinstance(node, dict):
            raise ProviderError(_("Alipay's answer to %(method)s is not an object") % {"method": method})
        if not signature:
            raise ProviderError(
                _("Alipay answered %(method)s without a signature: %(answer)s")
                % {"method": method, "answer": _describe(node)}
            )
        try:
            key = self._alipay_key()
        except ValueError as error:
            raise ProviderError(
                _("the configured Alipay public key is unusable: %(error)s") % {"error": error}
            ) from None
        if key is None:
            raise ProviderError(_("no Alipay public key is configured for this merchant"))
        if not isinstance(signature, str) or not rsa2_verify(raw_node.encode("utf-8"), signature, key):
            raise ProviderError(
                _("Alipay's answer to %(method)s does not verify with its public key") % {"method": method}
            )
        return node

    def query(self, payment: Payment) -> Notification | None:
        node = self.call("alipay.trade.query", {"out_trade_no": payment.out_trade_no})
        if node.get("code") != "10000":
            if node.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None
            raise ProviderError(_("alipay.trade.query failed: %(answer)s") % {"answer": _describe(node)})
        if node.get("out_trade_no") != payment.out_trade_no:
            raise ProviderError(
                _("Alipay answered about %(theirs)r, not %(ours)r")
                % {"theirs": node.get("out_trade_no"), "ours": payment.out_trade_no}
            )
        state = node.get("trade_status", "")
        if state not in TRADE_STATES:
            raise ProviderError(_("trade_status %(state)r is not one Alipay sends") % {"state": state})
        try:
            amount = _yuan_minor(node.get("total_amount"))
            paid_at = _beijing_time(node["send_pay_date"]) if node.get("send_pay_date") else None
        except (MoneyError, ValueError, TypeError) as error:
            raise ProviderError(
                _("Alipay's answer about %(out_trade_no)s is malformed: %(error)s")
                % {"out_trade_no": payment.out_trade_no, "error": error}
            ) from None
        return Notification(
            out_trade_no=payment.out_trade_no,
            provider_trade_no=node.get("trade_no", ""),
            amount_minor=amount,
            currency="CNY",
            paid=state in PAID_STATES,
            state=state,
            paid_at=paid_at,
        )

    def refund(self, refund: Refund) -> RefundResult:
        """alipay.trade.refund, idempotent on out_request_no (our out_refund_no): asking again after an
        unknown outcome refunds at most once. Alipay has no refund number of its own; the result
        carries the trade number the refund was booked on."""
        payment = refund.payment
        biz = {
            "out_trade_no": payment.out_trade_no,
            "refund_amount": _yuan(refund.amount, payment.currency),
            "out_request_no": refund.out_refund_no,
            "refund_reason": (refund.reason or "")[:256],
        }
        node = self.call("alipay.trade.refund", biz)
        if node.get("code") == "10000":
            return RefundResult(provider_refund_no=node.get("trade_no", ""), succeeded=True)
        if node.get("code") in UNKNOWN_OUTCOME_CODES or node.get("sub_code") in UNKNOWN_OUTCOME_SUB_CODES:
            raise ProviderError(
                _("alipay.trade.refund outcome unknown, ask again: %(answer)s") % {"answer": _describe(node)}
            )
        return RefundResult(provider_refund_no="", succeeded=False, failure=_describe(node))

    def download_statement(self, statement_date: date | str) -> BinaryIO:
        """The trade bill zip of `statement_date`, for parse_statement; its URL comes from a signed
        answer and is good for 30 seconds, so it is fetched at once."""
        url = self.statement_download_url(bill_date=str(statement_date))
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            raise ProviderError(_("the bill URL %(url)r is not a web address") % {"url": url})
        try:
            return io.BytesIO(self._transport(url, None))
        except ProviderError:
            raise
        except OSError as error:
            raise ProviderError(
                _("the bill of %(statement_date)s did not download: %(error)s")
                % {"statement_date": statement_date, "error": error}
            ) from None

    def statement_download_url(self, *, bill_date: str) -> str:
        """alipay.data.dataservice.bill.downloadurl.query for the trade bill of `bill_date` (YYYY-MM-DD);
        the URL stays valid for 30 seconds."""
        node = self.call(
            "alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": bill_date}
        )
        if node.get("code") != "10000" or not node.get("bill_download_url"):
            raise ProviderError(
                _("no bill for %(bill_date)s: %(answer)s") % {"bill_date": bill_date, "answer": _describe(node)}
            )
        return node["bill_download_url"]

    # -- statement

    def parse_statement(self, stream: BinaryIO) -> Iterator[StatementLine]:
        """The trade bill as downloaded (a zip holding 业务明细 and 业务明细(汇总) CSVs), or the
        业务明细 CSV alone. Consumers must not apply anything before the iterator is exhausted."""
        head, stream = peek(stream, 4)
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            return _zip_statement(stream)
        return alipay_detail_lines(stream)


def _form_fields(body: bytes) -> dict[str, str]:
    """The notification's form fields, URL-decoded in the charset the notification names."""
    try:
        text = body.decode("ascii")
        first = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), encoding="latin-1", max_num_fields=200
        )
        charset = (dict(first).get("charset") or "utf-8").lower()
        if charset not in {"utf-8", "gbk", "gb2312"}:
            raise NotificationRejected(_("charset %(charset)r is not one Alipay uses") % {"charset": charset})
        pairs = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding=charset,
            errors="strict",
            max_num_fields=200,
        )
    except (UnicodeDecodeError, ValueError):
        raise NotificationRejected(_("the body is not a form-encoded Alipay notification")) from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            # The signature covers one value; the other would be the one someone hopes we read.
            raise NotificationRejected(_("%(key)s appears twice") % {"key": key})
        fields[key] = value
    return fields


# --------------------------------------------------------------------------- the trade-detail bill

DETAIL_MARK = "业务明细"
SUMMARY_MARK = "汇总"
_TRADE_NO, _OUT_TRADE_NO, _TYPE = "支付宝交易号", "商户订单号", "业务类型"
_AMOUNT, _FEE, _FINISHED, _CREATED = "订单金额（元）", "服务费（元）", "完成时间", "创建时间"
_REQUEST_NO = "退款批次号/请求号"
DETAIL_COLUMNS = {
    "trade_no": (_TRADE_NO,),
    "out_trade_no": (_OUT_TRADE_NO,),
    "business_type": (_TYPE,),
    "amount": (_AMOUNT,),
    "fee": (_FEE,),
    "finished_at": (_FINISHED,),
    "created_at": (_CREATED,),
    "out_refund_no": (_REQUEST_NO,),
}
REQUIRED_COLUMNS = ("trade_no", "out_trade_no", "business_type", "amount", "fee", "finished_at", "out_refund_no")
BUSINESS_TYPES = {"交易": "trade", "退款": "refund"}


def _zip_statement(stream: BinaryIO) -> Iterator[StatementLine]:
    readable = seekable_stream(stream)
    try:
        try:
            archive = zipfile.ZipFile(readable)
        except (zipfile.BadZipFile, OSError) as error:
            raise StatementError(_("the statement is not a readable zip (%(error)s)") % {"error": error}) from None
        with archive:
            info = _detail_member(archive)
            with archive.open(info) as member:
                yield from alipay_detail_lines(member)
    finally:
        if readable is not stream:
            readable.close()


def member_name(info: zipfile.ZipInfo) -> str:
    """Alipay names the files in GBK without the zip's UTF-8 flag; Python read them as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _detail_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    names = {info: member_name(info) for info in archive.infolist() if not info.is_dir()}
    details = [info for info, name in names.items() if DETAIL_MARK in name and SUMMARY_MARK not in name]
    if len(details) != 1:
        listing = ", ".join(sorted(names.values())) or "nothing"
        raise StatementError(
            _("expected one %(DETAIL_MARK)s CSV (not the %(SUMMARY_MARK)s) in the zip; it holds %(listing)s")
            % {"DETAIL_MARK": DETAIL_MARK, "SUMMARY_MARK": SUMMARY_MARK, "listing": listing}
        )
    return details[0]


def alipay_detail_lines(binary: BinaryIO) -> Iterator[StatementLine]:
    """StatementLines of a 业务明细 CSV, read line by line: `#` comment lines before and after the
    table, columns found by header name, cells stripped of the tabs Alipay pads them with."""
    columns: dict[str, int] | None = None
    width = 0
    # GB18030 decodes every GBK byte sequence the same way, and the rare character GBK lacks.
    for line_no, text in statement_lines(binary, encoding="gb18030"):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cells = csv_cells(text, line_no=line_no)
        if columns is None:
            columns = column_index(cells, wanted=DETAIL_COLUMNS, required=REQUIRED_COLUMNS, line_no=line_no)
            width = max(columns.values()) + 1
            continue
        if len(cells) < width:
            raise StatementError(
                _("the row has %(len)s cells; the header needs %(width)s") % {"len": len(cells), "width": width},
                line_no=line_no,
            )
        yield _detail_line(cells, columns, line_no)
    if columns is None:
        raise StatementError(
            _("no %(DETAIL_MARK)s table: the header row (%(TRADE_NO)s, %(OUT_TRADE_NO)s, ...) is missing")
            % {"DETAIL_MARK": DETAIL_MARK, "TRADE_NO": _TRADE_NO, "OUT_TRADE_NO": _OUT_TRADE_NO}
        )


def _detail_line(cells: list[str], columns: dict[str, int], line_no: int) -> StatementLine:
    row = {field: cells[position] for field, position in columns.items()}
    kind = BUSINESS_TYPES.get(row["business_type"])
    if kind is None:
        raise StatementError(
            _("%(TYPE)s %(business_type)r is neither 交易 nor 退款")
            % {"TYPE": _TYPE, "business_type": row["business_type"]},
            line_no=line_no,
        )
    for field, column in (("trade_no", _TRADE_NO), ("out_trade_no", _OUT_TRADE_NO)):
        if not row[field]:
            raise StatementError(_("%(column)s is empty") % {"column": column}, line_no=line_no)
    amount = amount_minor(row["amount"], line_no=line_no, column=_AMOUNT)
    # Refunds are written negative: a sign the other way means the row is not what it says it is.
    if kind == "trade" and amount < 0:
        raise StatementError(
            _("a trade with a negative %(AMOUNT)s %(amount)s") % {"AMOUNT": _AMOUNT, "amount": row["amount"]},
            line_no=line_no,
        )
    if kind == "refund" and amount > 0:
        raise StatementError(
            _("a refund with a positive %(AMOUNT)s %(amount)s") % {"AMOUNT": _AMOUNT, "amount": row["amount"]},
            line_no=line_no,
        )
    return StatementLine(
        line_no=line_no,
        kind=kind,
        out_trade_no=row["out_trade_no"],
        provider_trade_no=row["trade_no"],
        amount_minor=abs(amount),
        # Charged on a trade (written negative), handed back on a refund: the kind says which.
        fee_minor=abs(fee_minor(row["fee"], line_no=line_no, column=_FEE)),
        occurred_at=local_time(row["finished_at"] or row.get("created_at", ""), line_no=line_no, column=_FINISHED),
        out_refund_no=row["out_refund_no"] if kind == "refund" else "",
        currency="CNY",
    )
