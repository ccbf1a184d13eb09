"""WeChat Pay (微信支付) API v3: signed requests and answers, the encrypted notification, the trade bill.

Everything WeChat Pay sends (notifications and API answers) is signed SHA256withRSA over
`timestamp\\nnonce\\nbody\\n` with the platform key named by `Wechatpay-Serial`; what we send is
signed over `METHOD\\npath?query\\ntimestamp\\nnonce\\nbody\\n` with the merchant key, in the
`Authorization` header. The notification's `resource` is AES-256-GCM encrypted with the APIv3 key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _

from o2o.exceptions import DomainError
from o2o.money import money_to_minor

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
from .csvstream import amount_minor, column_index, fee_minor, local_time, statement_lines, ungzipped
from .signing import load_private_key, load_public_key, rsa2_sign, rsa2_verify

if TYPE_CHECKING:
    from ..models import Payment, PaymentConfig, Refund

API = "https://api.mch.weixin.qq.com"
SIGNATURE_SCHEME = "WECHATPAY2-SHA256-RSA2048"
# WeChat Pay sends these now and then to check that merchants really verify signatures.
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_SKEW_SECONDS = 5 * 60
TIMEOUT_SECONDS = 15
# An answer or a day's bill larger than this is not one; refusing it keeps memory bounded.
MAX_ANSWER_BYTES = 256 * 1024 * 1024

TRADE_STATES = frozenset({"SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR"})
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED"})
_TIMESTAMP = re.compile(r"\d{1,12}", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


# (method, url, headers, body) -> the answer. Tests pass a fake; nothing in them touches the network.
Transport = Callable[[str, str, Mapping[str, str], bytes | None], HttpAnswer]


def urllib_transport(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310 - https API
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            status, answer_headers, body = (
                answer.status,
                dict(answer.headers.items()),
                answer.read(MAX_ANSWER_BYTES + 1),
            )
    except urllib.error.HTTPError as error:
        # 4xx answers are signed and say why (`code`, `message`); they are answers, not outages.
        status, answer_headers, body = error.code, dict(error.headers.items()), error.read(MAX_ANSWER_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        raise ProviderError(_("WeChat Pay could not be reached: %(error)s") % {"error": error}) from None
    if len(body) > MAX_ANSWER_BYTES:
        raise ProviderError(_("WeChat Pay's answer is larger than %(limit)s bytes") % {"limit": MAX_ANSWER_BYTES})
    return HttpAnswer(status, answer_headers, body)


def signed_message(*parts: bytes | str) -> bytes:
    """v3 signs its parts each followed by a newline."""
    return b"".join((part.encode("utf-8") if isinstance(part, str) else part) + b"\n" for part in parts)


def decrypt_resource(resource: Mapping[str, Any], api_v3_key: str) -> bytes:
    """AEAD_AES_256_GCM with the 32-byte APIv3 key; raises ValueError on anything off, the tag included."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise ValueError(f"resource algorithm {resource.get('algorithm')!r} is not AEAD_AES_256_GCM")
    key = (api_v3_key or "").encode("utf-8")
    if len(key) != 32:
        raise ValueError("the APIv3 key is not 32 bytes")
    nonce, ciphertext, associated = (resource.get(name) for name in ("nonce", "ciphertext", "associated_data"))
    if not isinstance(nonce, str) or not isinstance(ciphertext, str) or not isinstance(associated or "", str):
        raise ValueError("resource nonce, ciphertext or associated_data is not a string")
    try:
        return AESGCM(key).decrypt(
            nonce.encode("utf-8"), base64.b64decode(ciphertext, validate=True), (associated or "").encode("utf-8")
        )
    except InvalidTag:
        raise ValueError("resource does not decrypt with this merchant's APIv3 key (tag mismatch)") from None
    except (binascii.Error, OverflowError) as error:
        raise ValueError(f"resource ciphertext is malformed ({error})") from None


def _header_map(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names compared without case, and as Django's META spells them (HTTP_WECHATPAY_SERIAL)."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = str(name).lower().replace("_", "-").removeprefix("http-")
        value = str(value).strip()
        if found.get(key, value) != value:
            raise ValueError(f"header {key} is given twice with different values")
        found[key] = value
    return found


def _description(payment: Payment) -> str:
    try:
        title = payment.order.promotion.title
    except (ObjectDoesNotExist, AttributeError):
        title = ""
    text = title or f"Order {payment.out_trade_no}"
    # WeChat Pay counts the description's 127 in bytes.
    return text.encode("utf-8")[:127].decode("utf-8", errors="ignore")


def _fen(amount: Decimal, currency: str) -> int:
    if currency != "CNY":
        raise ProviderError(_("WeChat Pay (domestic) takes CNY, not %(currency)s") % {"currency": currency})
    return money_to_minor(amount, currency)


def _describe(status: int, data: Mapping[str, Any]) -> str:
    return f"HTTP {status} {data.get('code', '')}: {data.get('message', '')}".strip()


class WechatPayProvider(PaymentProvider):
    name = "wechatpay"
    statement_format = "wechatpay_tradebill"

    def __init__(
        self, config: PaymentConfig, *, transport: Transport | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__(config)
        self._transport = transport or urllib_transport
        self._clock = clock or time.time

    @cached_property
    def _private_key(self):
        if not self.config.signing_secret:
            raise ProviderError(_("no merchant private key is configured for WeChat Pay"))
        return load_private_key(self.config.signing_secret)

    # -- signatures

    def verify_signed(self, headers: Mapping[str, str], body: bytes, *, error: type[DomainError]) -> None:
        """Check a notification's or an answer's Wechatpay-* headers; raise `error` naming what is off."""
        try:
            found = _header_map(headers)
        except ValueError as problem:
            raise error(str(problem)) from None
        for name in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"):
            if not found.get(name.lower()):
                raise error(_("the %(name)s header is missing") % {"name": name})
        signature = found["wechatpay-signature"]
        if signature.startswith(PROBE_PREFIX):
            raise error(_("a WeChat Pay signature probe (WECHATPAY/SIGNTEST/), not a real notification"))
        scheme = found.get("wechatpay-signature-type", SIGNATURE_SCHEME)
        if scheme != SIGNATURE_SCHEME:
            raise error(
                _("Wechatpay-Signature-Type %(scheme)r is not %(expected)s")
                % {"scheme": scheme, "expected": SIGNATURE_SCHEME}
            )
        timestamp = found["wechatpay-timestamp"]
        if not _TIMESTAMP.fullmatch(timestamp):
            raise error(_("Wechatpay-Timestamp %(timestamp)r is not a Unix time") % {"timestamp": timestamp})
        # A signed message is only good for five minutes: an old one replayed is refused.
        skew = int(timestamp) - self._clock()
        if skew > MAX_SKEW_SECONDS:
            raise error(
                _("Wechatpay-Timestamp is %(seconds)s s in the future (more than 5 minutes)") % {"seconds": int(skew)}
            )
        if skew < -MAX_SKEW_SECONDS:
            raise error(_("Wechatpay-Timestamp is %(seconds)s s old (more than 5 minutes)") % {"seconds": int(-skew)})
        serial = found["wechatpay-serial"]
        key_text = self._platform_key_text(serial)
        if not key_text:
            raise error(
                _("Wechatpay-Serial %(serial)r is not a platform key configured for this merchant") % {"serial": serial}
            )
        try:
            key = load_public_key(key_text)
        except ValueError as problem:
            raise error(
                _("the platform key %(serial)s is unusable: %(problem)s") % {"serial": serial, "problem": problem}
            ) from None
        if not rsa2_verify(signed_message(timestamp, found["wechatpay-nonce"], body), signature, key):
            raise error(_("Wechatpay-Signature does not verify with platform key %(serial)s") % {"serial": serial})

    def _platform_key_text(self, serial: str) -> str:
        keys = self.config.provider_public_keys or {}
        if serial in keys:
            return keys[serial]
        by_upper = {str(name).upper(): text for name, text in keys.items()}
        return by_upper.get(serial.upper(), "")

    def authorization(self, method: str, path: str, body: str) -> str:
        """The Authorization header of one API request: `path` with its query, `body` exactly as sent."""
        if not self.config.merchant_cert_serial:
            raise ProviderError(_("no merchant certificate serial is configured for WeChat Pay"))
        timestamp = str(int(self._clock()))
        nonce = secrets.token_hex(16).upper()
        signature = rsa2_sign(signed_message(method, path, timestamp, nonce, body), self._private_key)
        return (
            f'{SIGNATURE_SCHEME} mchid="{self.config.merchant_no}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{self.config.merchant_cert_serial}"'
        )

    def request(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """One signed API call; returns (HTTP status, JSON) once the answer's signature verifies."""
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        headers = {"Authorization": self.authorization(method, path, body), "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = self._transport(method, API + path, headers, body.encode("utf-8") if payload is not None else None)
        except ProviderError:
            raise
        except OSError as error:
            raise ProviderError(_("WeChat Pay could not be reached: %(error)s") % {"error": error}) from None
        if answer.status >= 500:
            raise ProviderError(
                _("WeChat Pay answered %(method)s %(path)s with HTTP %(status)s")
                % {"method": method, "path": path.split("?")[0], "status": answer.status}
            )
        self.verify_signed(answer.headers, answer.body, error=ProviderError)
        try:
            data = json.loads(answer.body) if answer.body else {}
        except ValueError:
            raise ProviderError(
                _("WeChat Pay's answer to %(path)s is not JSON") % {"path": path.split("?")[0]}
            ) from None
        if not isinstance(data, dict):
            raise ProviderError(_("WeChat Pay's answer to %(path)s is not an object") % {"path": path.split("?")[0]})
        return answer.status, data

    # -- notifications

    def verify_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        self.verify_signed(headers, body, error=NotificationRejected)
        try:
            envelope = json.loads(body)
        except ValueError:
            raise NotificationRejected(_("the body is not JSON")) from None
        resource = envelope.get("resource") if isinstance(envelope, dict) else None
        if not isinstance(resource, dict):
            raise NotificationRejected(_("the notification has no resource"))
        original_type = resource.get("original_type", "transaction")
        if original_type != "transaction":
            raise NotificationRejected(
                _("resource original_type %(original_type)r is not a payment (transaction)")
                % {"original_type": original_type}
            )
        try:
            plaintext = decrypt_resource(resource, self.config.api_v3_key)
            transaction = json.loads(plaintext)
        except ValueError as error:
            raise NotificationRejected(str(error)) from None
        return paid_or_ignored(self._transaction(transaction, error=NotificationRejected))

    def _transaction(self, data: Any, *, error: type[DomainError]) -> Notification:
        """A v3 transaction object (decrypted notification or query answer), checked against our account."""
        if not isinstance(data, dict):
            raise error(_("the transaction is not an object"))
        if not self.config.merchant_no or not self.config.app_id:
            raise error(_("no mchid or appid is configured for this merchant's WeChat Pay account"))
        if data.get("mchid") != self.config.merchant_no:
            raise error(
                _("mchid %(mchid)r is not this merchant's (%(merchant_no)s)")
                % {"mchid": data.get("mchid"), "merchant_no": self.config.merchant_no}
            )
        if data.get("appid") != self.config.app_id:
            raise error(
                _("appid %(appid)r is not this merchant's (%(app_id)s)")
                % {"appid": data.get("appid"), "app_id": self.config.app_id}
            )
        out_trade_no, state = data.get("out_trade_no"), data.get("trade_state")
        if not isinstance(out_trade_no, str) or not out_trade_no:
            raise error(_("out_trade_no is missing"))
        if state not in TRADE_STATES:
            raise error(_("trade_state %(state)r is not one WeChat Pay sends") % {"state": state})
        paid = state == "SUCCESS"
        amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
        total = amount.get("total", None if paid else 0)
        # bool is an int in Python; a float or a string is not a whole number of fen.
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise error(_("amount.total %(total)r is not a whole number of fen") % {"total": total})
        currency = amount.get("currency", None if paid else "CNY")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise error(_("amount.currency %(currency)r is not a currency code") % {"currency": currency})
        transaction_id = data.get("transaction_id", "")
        if not isinstance(transaction_id, str) or (paid and not transaction_id):
            raise error(_("transaction_id is missing"))
        paid_at = None
        if data.get("success_time"):
            try:
                paid_at = datetime.fromisoformat(data["success_time"])
            except (TypeError, ValueError):
                paid_at = None
            if paid_at is None or paid_at.tzinfo is None:
                raise error(
                    _("success_time %(success_time)r is not an RFC 3339 time") % {"success_time": data["success_time"]}
                )
        return Notification(
            out_trade_no=out_trade_no,
            provider_trade_no=transaction_id,
            amount_minor=total,
            currency=currency,
            paid=paid,
            state=state,
            paid_at=paid_at,
        )

    def notify_answer(self, *, accepted: bool) -> NotifyAnswer:
        # v3: 200/204 means received; 4xx/5xx with {"code": "FAIL", ...} makes WeChat Pay send it again.
        if accepted:
            return NotifyAnswer(status=200, body='{"code":"SUCCESS"}', content_type="application/json")
        return NotifyAnswer(
            status=400, body='{"code":"FAIL","message":"notification not accepted"}', content_type="application/json"
        )

    # -- requests

    def checkout(
        self, payment: Payment, *, notify_url: str, return_url: str, client_ip: str = "", openid: str = ""
    ) -> Checkout:
        """Prepay: JSAPI inside WeChat (needs the payer's `openid`), H5 in a phone browser (needs the
        payer's `client_ip`), else Native (a code_url to show as a QR)."""
        order: dict[str, Any] = {
            "appid": self.config.app_id,
            "mchid": self.config.merchant_no,
            "description": _description(payment),
            "out_trade_no": payment.out_trade_no,
            "notify_url": notify_url,
            "amount": {"total": _fen(payment.amount, payment.currency), "currency": payment.currency},
        }
        if openid:
            kind, order["payer"] = "jsapi", {"openid": openid}
        elif client_ip:
            kind, order["scene_info"] = "h5", {"payer_client_ip": client_ip, "h5_info": {"type": "Wap"}}
        else:
            kind = "native"
        status, data = self.request("POST", f"/v3/pay/transactions/{kind}", order)
        if status != 200:
            raise ProviderError(
                _("%(kind)s prepay for %(out_trade_no)s failed: %(answer)s")
                % {"kind": kind, "out_trade_no": payment.out_trade_no, "answer": _describe(status, data)}
            )
        if kind == "jsapi" and data.get("prepay_id"):
            return Checkout(params=self.jsapi_params(data["prepay_id"]))
        if kind == "h5" and data.get("h5_url"):
            joiner = "&" if "?" in data["h5_url"] else "?"
            return Checkout(url=data["h5_url"] + joiner + urllib.parse.urlencode({"redirect_url": return_url}))
        if kind == "native" and data.get("code_url"):
            return Checkout(qr_data=data["code_url"])
        raise ProviderError(
            _("%(kind)s prepay for %(out_trade_no)s answered without what the phone needs")
            % {"kind": kind, "out_trade_no": payment.out_trade_no}
        )

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What WeixinJSBridge 'getBrandWCPayRequest' takes, paySign over appId, timeStamp, nonceStr, package."""
        params = {
            "appId": self.config.app_id,
            "timeStamp": str(int(self._clock())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        message = signed_message(params["appId"], params["timeStamp"], params["nonceStr"], params["package"])
        params["paySign"] = rsa2_sign(message, self._private_key)
        return params

    def query(self, payment: Payment) -> Notification | None:
        path = (
            f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(payment.out_trade_no, safe='')}"
            f"?mchid={urllib.parse.quote(self.config.merchant_no, safe='')}"
        )
        status, data = self.request("GET", path)
        if status == 404 and data.get("code") == "ORDER_NOT_EXIST":
            return None
        if status != 200:
            raise ProviderError(
                _("query for %(out_trade_no)s failed: %(answer)s")
                % {"out_trade_no": payment.out_trade_no, "answer": _describe(status, data)}
            )
        notification = self._transaction(data, error=ProviderError)
        if notification.out_trade_no != payment.out_trade_no:
            raise ProviderError(
                _("WeChat Pay answered about %(out_trade_no)r, not %(out_trade_no2)r")
                % {"out_trade_no": notification.out_trade_no, "out_trade_no2": payment.out_trade_no}
            )
        return notification

    def refund(self, refund: Refund) -> RefundResult:
        """POST /v3/refund/domestic/refunds, idempotent on out_refund_no. PROCESSING is a pending result:
        asked again later, the same refund reports its outcome."""
        payment = refund.payment
        body = {
            "out_trade_no": payment.out_trade_no,
            "out_refund_no": refund.out_refund_no,
            "reason": (refund.reason or "")[:80],
            "amount": {
                "refund": _fen(refund.amount, payment.currency),
                "total": _fen(payment.amount, payment.currency),
                "currency": payment.currency,
            },
        }
        status, data = self.request("POST", "/v3/refund/domestic/refunds", body)
        if status == 200:
            if data.get("out_refund_no") != refund.out_refund_no:
                raise ProviderError(
                    _("WeChat Pay answered about refund %(out_refund_no)r")
                    % {"out_refund_no": data.get("out_refund_no")}
                )
            refund_id, refund_status = str(data.get("refund_id", "")), data.get("status")
            if refund_status == "SUCCESS":
                return RefundResult(provider_refund_no=refund_id, succeeded=True)
            if refund_status == "PROCESSING":
                return RefundResult(provider_refund_no=refund_id, succeeded=False, pending=True)
            return RefundResult(
                provider_refund_no=refund_id,
                succeeded=False,
                failure=_("refund status %(refund_status)s") % {"refund_status": refund_status},
            )
        if data.get("code") in RETRYABLE_CODES:
            raise ProviderError(
                _("refund %(out_refund_no)s not taken, ask again: %(answer)s")
                % {"out_refund_no": refund.out_refund_no, "answer": _describe(status, data)}
            )
        return RefundResult(provider_refund_no="", succeeded=False, failure=_describe(status, data))

    def download_statement(self, statement_date: date | str) -> BinaryIO:
        """The ALL trade bill of `statement_date`, its SHA1 checked against what the API announced.
        (The file download itself is not signed by WeChat Pay; the announced hash is.)"""
        bill_date = str(statement_date)
        status, data = self.request(
            "GET", f"/v3/bill/tradebill?bill_date={urllib.parse.quote(bill_date)}&bill_type=ALL"
        )
        if status != 200 or not data.get("download_url"):
            raise ProviderError(
                _("no trade bill for %(bill_date)s: %(answer)s")
                % {"bill_date": bill_date, "answer": _describe(status, data)}
            )
        url = data["download_url"]
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Authorization": self.authorization("GET", path, "")}
        answer = self._transport("GET", url, headers, None)
        if answer.status != 200:
            raise ProviderError(
                _("the trade bill of %(bill_date)s did not download: HTTP %(status)s")
                % {"bill_date": bill_date, "status": answer.status}
            )
        digest = hashlib.sha1(answer.body, usedforsecurity=False).hexdigest()  # WeChat's choice of hash
        if data.get("hash_type", "SHA1") != "SHA1" or digest != data.get("hash_value"):
            raise ProviderError(
                _("the trade bill of %(bill_date)s does not match its announced hash") % {"bill_date": bill_date}
            )
        return io.BytesIO(answer.body)

    # -- statement

    def parse_statement(self, stream: BinaryIO) -> Iterator[StatementLine]:
        """The trade bill (tradebill, UTF-8, gzipped or not), line by line. The summary at its end is
        checked against the rows, so consumers must not apply anything before the iterator is exhausted."""
        return tradebill_lines(stream, merchant_no=self.statement_account())

    def statement_account(self) -> str:
        return self.config.merchant_no


# --------------------------------------------------------------------------- the trade bill

# Columns by name: 24- and 27-column layouts (and the older 总金额 naming) put them in different places.
BILL_COLUMNS = {
    "time": ("交易时间",),
    "mchid": ("商户号",),
    "transaction_id": ("微信订单号",),
    "out_trade_no": ("商户订单号",),
    "state": ("交易状态",),
    "currency": ("货币种类",),
    "settlement": ("应结订单金额", "总金额"),
    "total": ("订单金额",),
    "out_refund_no": ("商户退款单号",),
    "refund": ("退款金额",),
    "refund_applied": ("申请退款金额",),
    "fee": ("手续费",),
}
BILL_REQUIRED = ("time", "mchid", "transaction_id", "out_trade_no", "state", "settlement", "fee")
SUMMARY_COLUMNS = {
    "count": ("总交易单数",),
    "settlement": ("应结订单总金额", "总交易额"),
    "refund": ("退款总金额", "总退款金额"),
    "total": ("订单总金额",),
    "refund_applied": ("申请退款总金额",),
    "fee": ("手续费总金额",),
}
SUMMARY_FIRST = "总交易单数"
# Each summed detail column and the summary column that must equal its sum.
CROSS_CHECKS = ("settlement", "refund", "total", "refund_applied")
# Row states and the kind of line each gives. REVOKED (已撤销) is a payment-code trade cancelled
# before it settled: WeChat Pay lists it, but no money moved and nothing of ours was paid by it, so it
# gives no line; it still counts towards the summary's figures, which it is part of.
ROW_STATES = {"SUCCESS": "trade", "REFUND": "refund", "REVOKED": None}
# Fees are written to five places (0.06000); the summary's fee total is checked in those units, exactly.
FEE_PLACES = 5
FEE_SUM = "fee_as_written"


def _backtick_cells(text: str, *, line_no: int) -> list[str]:
    """Every data cell starts with a backtick, so split on ",`": a comma inside a product name stays."""
    if not text.startswith("`"):
        raise StatementError(_("a data row must start with a backtick (`)"), line_no=line_no)
    return [cell.strip() for cell in text[1:].split(",`")]


def tradebill_lines(stream: BinaryIO, *, merchant_no: str = "") -> Iterator[StatementLine]:
    """StatementLines of a WeChat Pay trade bill: header, rows, summary header, summary line.

    SUCCESS rows are trades (amount: 订单金额, else 应结订单金额 / 总金额), REFUND rows refunds
    (amount: 申请退款金额, else 退款金额): the order's total and the refund we asked for, the
    amounts our payments and refunds hold, before merchant coupons. REVOKED rows only count towards
    the summary (see ROW_STATES). Fees are given positive, the kind says the direction (the bill
    writes a refund's fee negative: handed back). The summary's count and totals must equal the rows
    read, in fen; its fee total equals the fee column's sum as written.
    """
    columns: dict[str, int] | None = None
    summary_header: list[str] | None = None
    summary_columns: dict[str, int] = {}
    width = 0
    summary_seen = False
    count = 0
    sums: dict[str, int] = {}
    last_line = 0
    for line_no, text in statement_lines(ungzipped(stream), encoding="utf-8"):
        last_line = line_no
        if not text.strip():
            continue
        if summary_seen:
            raise StatementError(_("text after the summary line"), line_no=line_no)
        if columns is None:
            header = [cell.strip() for cell in text.split(",")]
            columns = column_index(header, wanted=BILL_COLUMNS, required=BILL_REQUIRED, line_no=line_no)
            width = len(header)
            sums = {field: 0 for field in CROSS_CHECKS if field in columns}
            sums[FEE_SUM] = 0
            continue
        if summary_header is not None:
            _check_summary(
                summary_header, summary_columns, _backtick_cells(text, line_no=line_no), count, sums, line_no
            )
            summary_seen = True
            continue
        if not text.startswith("`"):
            header = [cell.strip() for cell in text.split(",")]
            if header[0] != SUMMARY_FIRST:
                raise StatementError(
                    _("expected a data row or the summary header (%(SUMMARY_FIRST)s, ...)")
                    % {"SUMMARY_FIRST": SUMMARY_FIRST},
                    line_no=line_no,
                )
            summary_columns = column_index(header, wanted=SUMMARY_COLUMNS, required=("count",), line_no=line_no)
            summary_header = header
            continue
        cells = _backtick_cells(text, line_no=line_no)
        if len(cells) != width:
            raise StatementError(
                _("the row has %(len)s cells; the header has %(width)s") % {"len": len(cells), "width": width},
                line_no=line_no,
            )
        count += 1
        line = _bill_row(cells, columns, sums, merchant_no, line_no)
        if line is not None:
            yield line
    if columns is None:
        raise StatementError(_("the trade bill is empty"), line_no=1)
    if not summary_seen:
        # The summary is the last thing written: without it the file was cut short.
        raise StatementError(_("the summary line is missing: the file ends early"), line_no=last_line)


def _bill_row(
    cells: list[str], columns: dict[str, int], sums: dict[str, int], merchant_no: str, line_no: int
) -> StatementLine | None:
    row = {field: cells[position] for field, position in columns.items()}
    amounts = {
        field: amount_minor(row[field] or "0", line_no=line_no, column=BILL_COLUMNS[field][0])
        for field in sums
        if field != FEE_SUM
    }
    for field, value in amounts.items():
        sums[field] += value
    fee = row["fee"]
    # As written, in the bill's five places: the summary's total is the exact sum of these.
    sums[FEE_SUM] += amount_minor(fee or "0", line_no=line_no, column="手续费", places=FEE_PLACES)
    state = row["state"]
    if state not in ROW_STATES:
        raise StatementError(
            _("交易状态 %(state)r is not SUCCESS, REFUND or REVOKED") % {"state": state}, line_no=line_no
        )
    if merchant_no and row["mchid"] != merchant_no:
        raise StatementError(
            _("商户号 %(mchid)r is not this merchant's (%(merchant_no)s)")
            % {"mchid": row["mchid"], "merchant_no": merchant_no},
            line_no=line_no,
        )
    kind = ROW_STATES[state]
    if kind is None:
        return None
    for field in ("transaction_id", "out_trade_no"):
        if not row[field]:
            raise StatementError(_("%(path)s is empty") % {"path": BILL_COLUMNS[field][0]}, line_no=line_no)
    if kind == "trade":
        amount = amounts["total"] if "total" in amounts else amounts["settlement"]
        out_refund_no = ""
    else:
        if "refund" not in amounts:
            raise StatementError(_("a REFUND row, but the header has no 退款金额"), line_no=line_no)
        amount = amounts["refund_applied"] if "refund_applied" in amounts else amounts["refund"]
        out_refund_no = row.get("out_refund_no", "")
        if not out_refund_no:
            raise StatementError(_("商户退款单号 is empty on a REFUND row"), line_no=line_no)
    if amount < 0:
        raise StatementError(_("a %(state)s row with a negative amount") % {"state": state}, line_no=line_no)
    return StatementLine(
        line_no=line_no,
        kind=kind,
        out_trade_no=row["out_trade_no"],
        provider_trade_no=row["transaction_id"],
        amount_minor=amount,
        # Charged on a trade, handed back (written negative) on a refund: the kind says which.
        fee_minor=abs(fee_minor(fee, line_no=line_no, column="手续费")),
        occurred_at=local_time(row["time"], line_no=line_no, column="交易时间"),
        out_refund_no=out_refund_no,
        currency=row.get("currency") or "CNY",
    )


def _check_summary(
    header: list[str], columns: dict[str, int], values: list[str], count: int, sums: dict[str, int], line_no: int
) -> None:
    if len(values) != len(header):
        raise StatementError(
            _("the summary has %(len)s cells; its header has %(len2)s") % {"len": len(values), "len2": len(header)},
            line_no=line_no,
        )
    stated = values[columns["count"]]
    if not stated.isascii() or not stated.isdigit():
        raise StatementError(_("总交易单数 %(stated)r is not a count") % {"stated": stated}, line_no=line_no)
    if int(stated) != count:
        raise StatementError(
            _("the summary says %(stated)s rows (总交易单数) but the bill has %(count)s")
            % {"stated": stated, "count": count},
            line_no=line_no,
        )
    if "fee" in columns:
        name, text = header[columns["fee"]], values[columns["fee"]]
        stated_fee = amount_minor(text, line_no=line_no, column=name, places=FEE_PLACES)
        if stated_fee != sums[FEE_SUM]:
            raise StatementError(
                _("the summary says %(name)s %(text)s but the rows add up to %(total)s")
                % {
                    "name": name,
                    "text": text,
                    "total": format(Decimal(sums[FEE_SUM]).scaleb(-FEE_PLACES), f".{FEE_PLACES}f"),
                },
                line_no=line_no,
            )
    for field in CROSS_CHECKS:
        if field not in columns or field not in sums:
            continue
        name = header[columns[field]]
        text = values[columns[field]]
        stated_minor = amount_minor(text, line_no=line_no, column=name)
        if stated_minor != sums[field]:
            raise StatementError(
                _("the summary says %(name)s %(text)s but the rows add up to %(total)s")
                % {"name": name, "text": text, "total": format(Decimal(sums[field]).scaleb(-2), ".2f")},
                line_no=line_no,
            )
