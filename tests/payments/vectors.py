"""Keys, notifications, API answers and settlement statements shaped as the providers document them.

Everything is generated in-process: RSA keys (cached per label for the session), notifications
signed and encrypted for real, statements produced lazily line by line, so a test can feed a
200,000-line bill to a parser without holding it. Nothing here reads the disk or the network.

Statement generators other tests can reuse:
- `bill_entries(n)`: n deterministic BillEntry (trades, every tenth a partial refund);
- `wechat_tradebill(entries, layout=27|24)` / `wechat_tradebill_lines(...)`: the trade bill;
- `alipay_bill_zip(entries)` / `alipay_detail_lines(...)`: the trade-detail zip of GBK CSVs;
- `lazy_stream(lines, encoding)`: a file object over a line iterator, read on demand;
- `write_lines(lines, file)`: the same lines written to a file one at a time.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orders.payments.models import Payment, PaymentConfig, Refund
from orders.payments.providers.wechatpay import HttpAnswer

# --------------------------------------------------------------------------- keys


@functools.cache
def rsa_key_pair(label: str) -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit key, one per label for the test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def bare_base64(pem: str) -> str:
    """A key as Alipay's console shows it: the base64 of the DER, no PEM lines."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@functools.cache
def _private_key(label: str):
    return serialization.load_pem_private_key(rsa_key_pair(label)[0].encode(), password=None)


def rsa_sign(message: bytes, label: str) -> str:
    key = _private_key(label)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(message: bytes, signature: str, label: str) -> bool:
    key = serialization.load_pem_public_key(rsa_key_pair(label)[1].encode())
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------- payments (unsaved)


def payment(out_trade_no: str = "0719141034-6418", amount: str = "2.00", currency: str = "CNY") -> Payment:
    return Payment(out_trade_no=out_trade_no, amount=Decimal(amount), currency=currency)


def refund(out_refund_no: str = "R0719141034-1", amount: str = "1.00", of: Payment | None = None) -> Refund:
    item = Refund(out_refund_no=out_refund_no, amount=Decimal(amount), reason="customer changed their mind")
    item.payment = of or payment()
    return item


# --------------------------------------------------------------------------- Alipay

ALIPAY_APP_ID = "2015102700040153"
ALIPAY_SELLER_ID = "2088102119685838"


def alipay_config(**overrides) -> PaymentConfig:
    values = {
        "provider": "alipay",
        "app_id": ALIPAY_APP_ID,
        "merchant_no": ALIPAY_SELLER_ID,
        # Alipay's console shows its public key as bare base64; the app key tool writes bare PKCS#8.
        "provider_public_keys": {"alipay": bare_base64(rsa_key_pair("alipay")[1])},
        "signing_secret": bare_base64(rsa_key_pair("merchant")[0]),
    }
    values.update(overrides)
    return PaymentConfig(**values)


def alipay_doc_notification() -> dict[str, str]:
    """The asynchronous notification of Alipay's documentation (异步通知示例), without its signature."""
    return {
        "total_amount": "2.00",
        "buyer_id": "2088102116773037",
        "body": "大乐透2.1",
        "trade_no": "2016071921001003030200089909",
        "refund_fee": "0.00",
        "notify_time": "2016-07-19 14:10:49",
        "subject": "大乐透2.1",
        "charset": "utf-8",
        "notify_type": "trade_status_sync",
        "out_trade_no": "0719141034-6418",
        "gmt_close": "2016-07-19 14:10:46",
        "gmt_payment": "2016-07-19 14:10:47",
        "trade_status": "TRADE_SUCCESS",
        "version": "1.0",
        "gmt_create": "2016-07-19 14:10:44",
        "app_id": ALIPAY_APP_ID,
        "seller_id": ALIPAY_SELLER_ID,
        "notify_id": "4a91b7a78a503640467525113fb7d8bg8e",
    }


# The 待签名字符串 Alipay's documentation derives from that notification. (The documentation's own
# string skips gmt_create although its notification carries it; it is put back here, in order.)
ALIPAY_DOC_SIGN_CONTENT = (
    "app_id=2015102700040153&body=大乐透2.1&buyer_id=2088102116773037&charset=utf-8"
    "&gmt_close=2016-07-19 14:10:46&gmt_create=2016-07-19 14:10:44&gmt_payment=2016-07-19 14:10:47"
    "&notify_id=4a91b7a78a503640467525113fb7d8bg8e"
    "&notify_time=2016-07-19 14:10:49&notify_type=trade_status_sync&out_trade_no=0719141034-6418&refund_fee=0.00"
    "&seller_id=2088102119685838&subject=大乐透2.1&total_amount=2.00&trade_no=2016071921001003030200089909"
    "&trade_status=TRADE_SUCCESS&version=1.0"
)


def alipay_signed(fields: dict[str, str], *, label: str = "alipay", charset: str = "utf-8") -> dict[str, str]:
    """`fields` with sign_type and an RSA2 sign, as Alipay signs a notification (written independently
    of the provider code, from the documentation: sorted, empty values out, sign and sign_type out)."""
    content = "&".join(f"{key}={fields[key]}" for key in sorted(fields) if fields[key] != "" and key != "sign_type")
    return {**fields, "sign_type": "RSA2", "sign": rsa_sign(content.encode(charset), label)}


def alipay_form(fields: dict[str, str], *, charset: str = "utf-8") -> bytes:
    return urllib.parse.urlencode(fields, encoding=charset).encode("ascii")


def alipay_answer(method: str, node: dict, *, label: str = "alipay", spacing: str = "") -> bytes:
    """A synchronous gateway answer: the `<method>_response` JSON text, signed as written."""
    raw = json.dumps(node, ensure_ascii=False, separators=(", " if spacing else ",", ": " if spacing else ":"))
    name = method.replace(".", "_") + "_response"
    sign = rsa_sign(raw.encode(), label)
    return f'{{"{name}":{spacing}{raw},{spacing}"sign":"{sign}"}}'.encode()


# --------------------------------------------------------------------------- WeChat Pay

WECHAT_MCHID = "1230000109"
WECHAT_APPID = "wxd678efh567hg6787"
PLATFORM_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
MERCHANT_SERIAL = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
API_V3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"  # 32 bytes, as the merchant platform requires
NOW = 1_770_000_000  # a fixed clock for tests: 2026-02-02 UTC


def wechat_config(**overrides) -> PaymentConfig:
    values = {
        "provider": "wechatpay",
        "app_id": WECHAT_APPID,
        "merchant_no": WECHAT_MCHID,
        "provider_public_keys": {PLATFORM_SERIAL: rsa_key_pair("platform")[1]},
        "signing_secret": rsa_key_pair("merchant")[0],
        "api_v3_key": API_V3_KEY,
        "merchant_cert_serial": MERCHANT_SERIAL,
    }
    values.update(overrides)
    return PaymentConfig(**values)


def wechat_doc_transaction() -> dict:
    """The decrypted resource of WeChat Pay's payment notification documentation (支付成功通知)."""
    return {
        "transaction_id": "1217752501201407033233368018",
        "amount": {"payer_total": 100, "total": 100, "currency": "CNY", "payer_currency": "CNY"},
        "mchid": WECHAT_MCHID,
        "trade_state": "SUCCESS",
        "bank_type": "CMC",
        "promotion_detail": [],
        "success_time": "2018-06-08T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "out_trade_no": "1217752501201407033233368018",
        "appid": WECHAT_APPID,
        "trade_state_desc": "支付成功",
        "trade_type": "MICROPAY",
        "attach": "自定义数据",
        "scene_info": {"device_id": "013467007045764"},
    }


def wechat_encrypt(
    plaintext: bytes, *, key: str = API_V3_KEY, nonce: str = "fdasflkja484", associated_data: str = "transaction"
) -> dict:
    """A `resource` object: AEAD_AES_256_GCM under the APIv3 key, ciphertext with its tag, base64."""
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {
        "original_type": "transaction",
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def wechat_signed_headers(
    body: bytes,
    *,
    timestamp: int = NOW,
    nonce: str = "fdasfwer2343f",
    label: str = "platform",
    serial: str = PLATFORM_SERIAL,
) -> dict[str, str]:
    signature = rsa_sign(f"{timestamp}\n{nonce}\n".encode() + body + b"\n", label)
    return {
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def wechat_notification(
    transaction: dict | bytes | None = None, *, api_v3_key: str = API_V3_KEY, **signing
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a v3 payment notification, encrypted and signed for real."""
    if transaction is None:
        transaction = wechat_doc_transaction()
    plaintext = transaction if isinstance(transaction, bytes) else json.dumps(transaction, ensure_ascii=False).encode()
    envelope = {
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": wechat_encrypt(plaintext, key=api_v3_key),
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    return body, wechat_signed_headers(body, **signing)


def wechat_answer(status: int, payload: dict | None, **signing) -> HttpAnswer:
    """An API answer, signed by the platform key as WeChat Pay signs every answer."""
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    return HttpAnswer(status=status, headers=wechat_signed_headers(body, **signing), body=body)


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class BillEntry:
    """One transaction for a generated statement; amounts as the bills write them, in yuan."""

    kind: str  # "trade" or "refund"
    out_trade_no: str
    provider_trade_no: str
    amount: str
    fee: str = "0.01"
    out_refund_no: str = ""
    provider_refund_no: str = ""
    occurred_at: str = "2026-03-01 10:00:00"
    extra: dict = field(default_factory=dict)  # cells to override by column name


def bill_entries(count: int, *, refund_every: int = 10, start: int = 0) -> Iterator[BillEntry]:
    """`count` entries, lazily: trades of varying amounts, every `refund_every`-th a partial refund."""
    for n in range(start, start + count):
        trade = f"{n:010d}"
        if refund_every and n % refund_every == refund_every - 1:
            yield BillEntry(
                "refund", f"T{trade}", f"4200{trade}", "1.50", "0.01", f"R{trade}", f"5030{trade}",
                f"2026-03-01 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
            )  # fmt: skip
        else:
            yield BillEntry(
                "trade", f"T{trade}", f"4200{trade}", f"{1 + n % 500}.{n % 100:02d}", "0.01", "", "",
                f"2026-03-01 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
            )  # fmt: skip


WECHAT_COLUMNS_27 = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
).split(",")
WECHAT_SUMMARY_27 = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额".split(",")
)
# The older layout some merchants still get: 总金额 for 应结订单金额, 子商户号, no 订单金额/申请退款金额/费率备注.
WECHAT_COLUMNS_24 = (
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,"
    "商户数据包,手续费,费率"
).split(",")
WECHAT_SUMMARY_24 = "总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额".split(",")


def _wechat_cells(entry: BillEntry, *, mchid: str, appid: str) -> dict[str, str]:
    refund = entry.kind == "refund"
    fee = Decimal(entry.fee) * (-1 if refund else 1)
    cells = {
        "交易时间": entry.occurred_at,
        "公众账号ID": appid,
        "商户号": mchid,
        "特约商户号": "0",
        "子商户号": "0",
        "微信订单号": entry.provider_trade_no,
        "商户订单号": entry.out_trade_no,
        "用户标识": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "交易类型": "JSAPI",
        "交易状态": "REFUND" if refund else "SUCCESS",
        "付款银行": "OTHERS",
        "货币种类": "CNY",
        "应结订单金额": "0.00" if refund else entry.amount,
        "总金额": "0.00" if refund else entry.amount,
        "代金券金额": "0.00",
        "代金券或立减优惠金额": "0.00",
        "微信退款单号": entry.provider_refund_no if refund else "0",
        "商户退款单号": entry.out_refund_no if refund else "0",
        "退款金额": entry.amount if refund else "0.00",
        "充值券退款金额": "0.00",
        "代金券或立减优惠退款金额": "0.00",
        "退款类型": "ORIGINAL" if refund else "",
        "退款状态": "SUCCESS" if refund else "",
        "商品名称": "双层保温杯, 含礼盒",  # a comma inside a cell, as product names have
        "商户数据包": "",
        "手续费": f"{fee:.5f}",  # WeChat pads fees to five places
        "费率": "0.60%",
        "订单金额": "0.00" if refund else entry.amount,
        "申请退款金额": entry.amount if refund else "0.00",
        "费率备注": "",
    }
    cells.update(entry.extra)
    return cells


def _decimal(text: str) -> Decimal:
    """A cell's amount for the generated summary; a deliberately malformed cell counts as nothing."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal(0)


def wechat_tradebill_lines(
    entries: Iterable[BillEntry],
    *,
    layout: int = 27,
    mchid: str = WECHAT_MCHID,
    appid: str = WECHAT_APPID,
    summary: dict[str, str] | None = None,
    bom: bool = False,
    with_summary: bool = True,
) -> Iterator[str]:
    """The trade bill's lines (no line endings): header, backtick rows, summary header and line.
    The summary is what the rows add up to, unless `summary` overrides some of its cells."""
    columns, summary_columns = (WECHAT_COLUMNS_27, WECHAT_SUMMARY_27) if layout == 27 else (
        WECHAT_COLUMNS_24, WECHAT_SUMMARY_24
    )  # fmt: skip
    yield ("\ufeff" if bom else "") + ",".join(columns)
    count, totals = 0, dict.fromkeys(("settle", "refund", "fee", "total", "applied"), Decimal(0))
    for entry in entries:
        cells = _wechat_cells(entry, mchid=mchid, appid=appid)
        count += 1
        for total, name in (("settle", "应结订单金额"), ("refund", "退款金额"), ("fee", "手续费")):
            totals[total] += _decimal(cells[name])
        totals["total"] += _decimal(cells["订单金额"])
        totals["applied"] += _decimal(cells["申请退款金额"])
        yield ",".join("`" + cells.get(name, "") for name in columns)
    if not with_summary:
        return
    stated = {
        "总交易单数": str(count),
        "应结订单总金额": f"{totals['settle']:.2f}",
        "总交易额": f"{totals['settle']:.2f}",
        "退款总金额": f"{totals['refund']:.2f}",
        "总退款金额": f"{totals['refund']:.2f}",
        "手续费总金额": f"{totals['fee']:.5f}",
        "订单总金额": f"{totals['total']:.2f}",
        "申请退款总金额": f"{totals['applied']:.2f}",
    }
    stated.update(summary or {})
    yield ",".join(summary_columns)
    yield ",".join("`" + stated.get(name, "0.00") for name in summary_columns)


def wechat_tradebill(entries: Iterable[BillEntry], **options) -> bytes:
    return ("\r\n".join(wechat_tradebill_lines(entries, **options)) + "\r\n").encode("utf-8")


ALIPAY_DETAIL_COLUMNS = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
    "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
).split(",")
ALIPAY_ACCOUNT = ALIPAY_SELLER_ID + "0156"


def _alipay_cells(entry: BillEntry) -> dict[str, str]:
    refund = entry.kind == "refund"
    amount = f"-{entry.amount}" if refund else entry.amount
    cells = {
        # Alipay pads the long numbers with a tab so spreadsheets keep every digit.
        "支付宝交易号": entry.provider_trade_no + "\t",
        "商户订单号": entry.out_trade_no + "\t",
        "业务类型": "退款" if refund else "交易",
        "商品名称": "双层保温杯",
        "创建时间": entry.occurred_at,
        "完成时间": entry.occurred_at,
        "对方账户": "buy***@example.com",
        "订单金额（元）": amount,
        "商家实收（元）": amount,
        "退款批次号/请求号": entry.out_refund_no + "\t" if refund else "",
        "服务费（元）": entry.fee if refund else f"-{entry.fee}",
    }
    cells.update(entry.extra)
    return cells


def alipay_detail_lines(
    entries: Iterable[BillEntry], *, account: str = ALIPAY_ACCOUNT, pad_header: bool = True
) -> Iterator[str]:
    """The 业务明细 CSV's lines: `#` comments, a header (cells padded with spaces, as Alipay writes
    it), rows with tab-padded numbers and negative refunds, `#` totals after the table."""
    yield "#支付宝业务明细查询"
    yield f"#账号：[{account}]"
    yield "#起始日期：[2026年03月01日 00:00:00]   终止日期：[2026年03月02日 00:00:00]"
    yield "#-----------------------------------------业务明细列表----------------------------------------"
    yield ",".join(f"{name}    " if pad_header else name for name in ALIPAY_DETAIL_COLUMNS)
    trades = refunds = 0
    for entry in entries:
        cells = _alipay_cells(entry)
        trades += entry.kind == "trade"
        refunds += entry.kind == "refund"
        yield ",".join(cells.get(name, "0.00" if "元" in name else "") for name in ALIPAY_DETAIL_COLUMNS)
    yield "#-----------------------------------------业务明细列表结束------------------------------------"
    yield f"#交易合计：{trades}笔，退款合计：{refunds}笔"
    yield "#导出时间：[2026年03月02日 09:12:33]"


class _GbkNamedInfo(zipfile.ZipInfo):
    """Alipay names its zip members in GBK without the UTF-8 flag; zipfile would write UTF-8."""

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's own name
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def alipay_bill_zip(
    entries: Iterable[BillEntry], *, into: BinaryIO | None = None, lines: Iterable[str] | None = None
) -> bytes | None:
    """The trade bill zip as Alipay serves it: 业务明细 and 业务明细(汇总) CSVs in GBK, CRLF lines,
    member names in GBK. Streams into `into` (a file) when given, else returns the bytes."""
    target = into if into is not None else io.BytesIO()
    prefix = f"{ALIPAY_ACCOUNT}_20260301"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        summary = _GbkNamedInfo(f"{prefix}_业务明细(汇总).csv", date_time=(2026, 3, 2, 9, 12, 33))
        summary.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(
            summary,
            "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）\r\n,,1,0,9.99\r\n".encode(
                "gbk"
            ),
        )
        detail = _GbkNamedInfo(f"{prefix}_业务明细.csv", date_time=(2026, 3, 2, 9, 12, 33))
        detail.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(detail, "w", force_zip64=True) as member:
            for line in lines if lines is not None else alipay_detail_lines(entries):
                member.write((line + "\r\n").encode("gbk"))
    return None if into is not None else target.getvalue()


class _LazyRaw(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def write_lines(lines: Iterable[str], into: BinaryIO, *, encoding: str = "utf-8", newline: str = "\r\n") -> None:
    """Write generated lines to a file one at a time: a statement of any length, never held whole."""
    for line in lines:
        into.write((line + newline).encode(encoding))


def lazy_stream(lines: Iterable[str], *, encoding: str = "utf-8", newline: str = "\r\n") -> BinaryIO:
    """A read-only, non-seekable file object whose bytes are produced only as they are read."""
    return io.BufferedReader(_LazyRaw((line + newline).encode(encoding) for line in lines))


def unseekable(data: bytes, *, chunk_size: int = 8192) -> BinaryIO:
    """`data` behind a file object that cannot seek, as a request body or a pipe."""
    return io.BufferedReader(_LazyRaw(data[i : i + chunk_size] for i in range(0, len(data), chunk_size)))
