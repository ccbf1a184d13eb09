"""Signatures, in one place for every provider: RSA2 (SHA256withRSA, PKCS#1 v1.5, base64) as Alipay and
WeChat Pay API v3 both use it, the keys in the forms their consoles hand out, and the sandbox's HMAC-SHA256.

Verification answers True or False and never raises for a bad signature; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.utils.translation import gettext as _

from .base import ProviderError


@functools.lru_cache(maxsize=64)
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """A PEM private key, or the bare base64 (PKCS#8 or PKCS#1) that Alipay's key tool writes.

    Cached by its text: loading checks the key's consistency, milliseconds that every notification
    and checkout would otherwise pay again (a provider lives for one request)."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.strip().encode(), password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode("".join(text.split())), password=None)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as error:
        raise ProviderError(_("the signing key is not an RSA private key (%(error)s)") % {"error": error}) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ProviderError(_("the signing key is not an RSA private key"))
    return key


@functools.lru_cache(maxsize=64)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    """A PEM public key or certificate, or the bare base64 key that Alipay's console shows."""
    try:
        if "BEGIN CERTIFICATE" in text:
            from cryptography import x509

            key = x509.load_pem_x509_certificate(text.strip().encode()).public_key()
        elif "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.strip().encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split())))
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as error:
        raise ValueError(f"not an RSA public key ({error})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa2_sign(content: bytes, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(content, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def rsa2_verify(content: bytes, signature: str, key: rsa.RSAPublicKey) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of `message` under `secret` (UTF-8)."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_sha256_verify(secret: str, message: bytes, signature: str) -> bool:
    """Whether `signature` (hex, any case) is `message`'s HMAC-SHA256 under `secret`. Constant time: how
    much of a guessed signature matched must not show in the answer's timing."""
    expected = hmac_sha256_hex(secret, message).encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace"))
