"""Phone numbers as customers type them: one spelling per person, or a message naming what was typed."""

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from members.phones import InvalidPhone, phone_normalize

E164 = re.compile(r"\+[1-9][0-9]{7,14}")

# A mainland mobile number: 1, a second digit 3-9, nine more digits (ASCII).
cn_mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)
country_prefixes = st.sampled_from(["", "+86", "+86 ", "0086", "0086 ", "(+86) ", "+86-"])
separators = st.sampled_from(["", " ", "-", "  ", " - ", ".", "\u3000"])

_FULL_WIDTH = str.maketrans("0123456789+-", "０１２３４５６７８９＋－")


@st.composite
def spellings(draw, number: str) -> str:
    """`number` as a person might type it: country prefix or not, grouped by spaces/dashes, padded,
    sometimes in the full-width digits Chinese input methods produce."""
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=10), max_size=4)))
    groups = [number[a:b] for a, b in zip([0, *cuts], [*cuts, 11], strict=True)]
    typed = ""
    for i, group in enumerate(groups):
        typed += (draw(separators) if i else "") + group
    typed = draw(country_prefixes) + typed
    typed = draw(st.sampled_from(["", " "])) + typed + draw(st.sampled_from(["", " ", "\t"]))
    if draw(st.booleans()):
        typed = typed.translate(_FULL_WIDTH)
    return typed


@given(data=st.data(), number=cn_mobiles)
@example(data=None, number="13812345678")
def test_every_spelling_of_a_mainland_mobile_becomes_the_same_plus86_number(data, number):
    # Given a mainland mobile number and some way a customer typed it
    typed = data.draw(spellings(number)) if data else "+86 138-1234 5678"
    # When it is normalised
    # Then it is the one E.164 spelling, whatever the spacing, prefix or digit width
    assert phone_normalize(typed) == "+86" + number


@pytest.mark.parametrize(
    "typed",
    ["138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "0086 13812345678", "+86(138)12345678",
     "１３８ １２３４ ５６７８", "＋８６ １３８－１２３４－５６７８", " 13812345678 "],
)
def test_common_spellings_of_one_number_are_one_member_key(typed):
    assert phone_normalize(typed) == "+8613812345678"


@given(raw=st.text(max_size=30))
@example(raw="13８12345678")  # one full-width digit among ASCII ones
@example(raw="13٨12345678")  # an Arabic-Indic digit: \d matches it, E.164 does not
def test_any_input_is_either_an_ascii_e164_number_or_refused_with_the_input_quoted(raw):
    # Given anything at all in the phone field
    try:
        normalised = phone_normalize(raw)
    except InvalidPhone as error:
        # Then a refusal quotes what was typed, so the customer sees what to fix
        assert raw in error.message
    else:
        # Or the result is plain-ASCII E.164 (what Member.phone stores and providers accept) and stable
        assert E164.fullmatch(normalised), normalised
        assert phone_normalize(normalised) == normalised


@given(number=cn_mobiles)
def test_normalising_twice_changes_nothing(number):
    once = phone_normalize(number)
    assert phone_normalize(once) == once


# Invalid inputs, by kind: each must be refused, never guessed into some number.
too_short_or_long = st.text(alphabet="0123456789", min_size=1, max_size=20).filter(
    lambda d: len(d) != 11 and not d.startswith("00")
)
wrong_second_digit = st.builds(
    lambda second, rest: "1" + second + rest, st.sampled_from("012"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)
not_starting_with_one = st.builds(
    lambda first, rest: first + rest, st.sampled_from("23456789"),
    st.text(alphabet="0123456789", min_size=10, max_size=10),
)
plus86_not_mobile = st.builds(lambda digits: "+86 " + digits, too_short_or_long | wrong_second_digit)


@st.composite
def with_a_letter(draw) -> str:
    number = draw(cn_mobiles)
    at = draw(st.integers(min_value=0, max_value=11))
    return number[:at] + draw(st.sampled_from("abcxO#*")) + number[at:]


@given(raw=too_short_or_long | wrong_second_digit | not_starting_with_one | plus86_not_mobile | with_a_letter())
@example(raw="")
@example(raw=" - ")
@example(raw="+86")
@example(raw="138 1234 567")
@example(raw="13٨١٢٣٤٥٦٧٨")
def test_malformed_numbers_are_refused_with_a_message_containing_the_input(raw):
    with pytest.raises(InvalidPhone) as refused:
        phone_normalize(raw)
    assert f"“{raw}”" in refused.value.message


def test_other_countries_need_a_leading_plus_and_keep_their_code():
    assert phone_normalize("+852 9123 4567") == "+85291234567"
    assert phone_normalize("00852 9123 4567") == "+85291234567"
    with pytest.raises(InvalidPhone):
        phone_normalize("852 9123 4567")


def test_digits_of_other_scripts_are_refused_not_stored():
    # Arabic-Indic digits are "digits" to \d but no phone network's spelling.
    with pytest.raises(InvalidPhone):
        phone_normalize("13٨12345678")
