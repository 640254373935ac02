"""The importer's number reading agrees with phonenumbers' own parser and validation."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from campaigns.importing import normalise_phone

E164 = phonenumbers.PhoneNumberFormat.E164


def library(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, E164) if phonenumbers.is_valid_number(number) else None


def ours(text: str, region: str) -> str | None:
    parsed = normalise_phone(text, region)
    return phonenumbers.format_number(parsed[0], E164) if parsed else None


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+14155552671", "", "+14155552671"),
        ("+390612345678", "", "+390612345678"),  # Italian leading zero
        ("+119173504149", "", "+19173504149"),  # a national prefix the general parser strips
        ("98765 43210", "IN", "+919876543210"),
        ("14155552671", "", "+14155552671"),  # a spreadsheet dropped the +
        ("+1415555", "", None),
        ("+0123456789", "", None),
    ],
)
def test_examples(text, region, expected):
    assert ours(text, region) == expected


def test_random_international_numbers_read_as_the_library_reads_them():
    rng = random.Random(14)
    codes = list(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for _ in range(5000):
        text = f"+{rng.choice(codes)}{rng.randint(10**5, 10**12)}"
        assert ours(text, "") == library(text, None), text


def test_workbooks_are_parsed_with_defusedxml():
    import openpyxl

    assert openpyxl.DEFUSEDXML is True
