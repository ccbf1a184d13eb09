"""The one signing module every provider uses: RSA2 (SHA256withRSA) over keys in the forms the providers'
consoles hand out, and the sandbox's HMAC-SHA256. Keys are generated in the test session."""

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.payments.providers.base import ProviderError
from orders.payments.providers.signing import (
    hmac_sha256_hex,
    hmac_sha256_verify,
    load_private_key,
    load_public_key,
    rsa2_sign,
    rsa2_verify,
)

from . import vectors as v

messages = st.binary(max_size=300)
# RSA is slow enough, and a first example also generates the session's keys: no per-example deadline.
slow = settings(deadline=None, max_examples=40)


@slow
@given(message=messages)
def test_what_the_merchant_key_signs_verifies_with_its_public_key_and_the_documents_own_check(message):
    signature = rsa2_sign(message, load_private_key(v.rsa_key_pair("merchant")[0]))
    assert rsa2_verify(message, signature, load_public_key(v.rsa_key_pair("merchant")[1]))
    # and an independent implementation (tests/payments/vectors.py) agrees
    assert v.rsa_verify(message, signature, "merchant")


@slow
@given(message=messages, flip=st.integers(min_value=0))
def test_a_changed_byte_or_another_key_does_not_verify(message, flip):
    signature = rsa2_sign(message, load_private_key(v.rsa_key_pair("merchant")[0]))
    public = load_public_key(v.rsa_key_pair("merchant")[1])
    if message:
        changed = bytearray(message)
        changed[flip % len(changed)] ^= 0x01
        assert not rsa2_verify(bytes(changed), signature, public)
    assert not rsa2_verify(message, signature, load_public_key(v.rsa_key_pair("alipay")[1]))
    assert not rsa2_verify(message, "not base64!", public)
    assert not rsa2_verify(message, base64.b64encode(b"\0" * 256).decode(), public)


def test_keys_load_from_pem_and_from_the_bare_base64_the_consoles_show():
    private_pem, public_pem = v.rsa_key_pair("merchant")
    signature = rsa2_sign(b"x", load_private_key(v.bare_base64(private_pem)))
    assert rsa2_verify(b"x", signature, load_public_key(v.bare_base64(public_pem)))
    assert rsa2_verify(b"x", signature, load_public_key(public_pem))


def test_a_key_that_is_not_one_is_refused_with_a_reason():
    with pytest.raises(ProviderError, match="not an RSA private key"):
        load_private_key("not a key")
    with pytest.raises(ValueError, match="not an RSA public key"):
        load_public_key("bm90IGEga2V5")


@given(secret=st.text(min_size=1, max_size=40), message=messages, other=messages)
def test_hmac_verifies_its_own_signature_in_any_case_and_nothing_else(secret, message, other):
    signature = hmac_sha256_hex(secret, message)
    assert len(signature) == 64
    assert hmac_sha256_verify(secret, message, signature)
    assert hmac_sha256_verify(secret, message, f" {signature.upper()} ")
    assert hmac_sha256_verify(secret, other, signature) is (other == message)
    assert not hmac_sha256_verify(secret + "x", message, signature)
    assert not hmac_sha256_verify(secret, message, "签名")
