"""Reading a voucher code from whatever reaches the counter (properties, with hypothesis)."""

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from orders.codes import ALPHABET, VOUCHER_CODE_LENGTH, random_code, voucher_code_display
from orders.pickups.codes import voucher_code_is_wellformed, voucher_code_parse
from orders.qr import voucher_url

codes = st.text(alphabet=ALPHABET, min_size=VOUCHER_CODE_LENGTH, max_size=VOUCHER_CODE_LENGTH)
separators = st.sampled_from([" ", "-", "  ", "\t", "_", ".", "\u2014", "\u2013", "\uff0d", "\u3000"])
FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


@st.composite
def typed_codes(draw):
    """A code as a person types it: any case, separators anywhere, spaces around, maybe full-width."""
    code = draw(codes)
    out = []
    for char in code:
        if draw(st.booleans()):
            char = char.lower()
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(separators))
        out.append(char)
    typed = draw(st.sampled_from(["", " ", "\n"])) + "".join(out) + draw(st.sampled_from(["", " ", "\r\n"]))
    if draw(st.booleans()):  # a Chinese input method in full-width mode
        typed = "".join(FULL_WIDTH.get(char, char) for char in typed)
    return code, typed


@given(typed_codes())
def test_any_way_of_typing_a_code_reads_as_the_code(pair):
    code, typed = pair
    assert voucher_code_parse(typed) == code


@given(codes)
def test_the_printed_form_and_the_voucher_link_read_as_the_code(code):
    assert voucher_code_parse(voucher_code_display(code)) == code
    assert voucher_code_parse(voucher_url(pickup_code=code)) == code
    assert voucher_code_parse(f"/cashier/?code={quote(voucher_code_display(code))}") == code


@given(codes, st.sampled_from(["https://shop.example/cashier/?code={}", "http://127.0.0.1:8000/cashier/?x=1&code={}",
                                "HTTPS://SHOP.EXAMPLE/CASHIER/?CODE=zz&code={}", "/c/{}/", "https://x.test/v/{}"]))
def test_links_of_other_shapes_give_up_their_code(code, shape):
    assert voucher_code_parse(shape.format(code)) == code


@given(st.text(max_size=600))
def test_parsing_never_fails_and_only_wellformed_results_can_be_codes(anything):
    parsed = voucher_code_parse(anything)
    assert isinstance(parsed, str) and len(parsed) <= 600
    if voucher_code_is_wellformed(parsed):
        assert set(parsed) <= set(ALPHABET) and len(parsed) == VOUCHER_CODE_LENGTH


def test_confusable_characters_are_never_wellformed():
    # 0/O, 1/I/L and U are left out of the alphabet: a code with them was mistyped, not another code.
    for bad in "01OILU":
        assert not voucher_code_is_wellformed(bad + "A" * (VOUCHER_CODE_LENGTH - 1))


def test_voucher_codes_carry_at_least_40_bits():
    import math

    assert VOUCHER_CODE_LENGTH * math.log2(len(ALPHABET)) >= 40
    assert len({random_code(VOUCHER_CODE_LENGTH) for _ in range(2000)}) == 2000
