"""Phone numbers as keys: every way a number is written, read in a region, is one E.164 key."""

from __future__ import annotations

import pytest

from plugin.domain.phones import (
    DEFAULT_REGION,
    NotAPhoneNumber,
    is_region,
    phone_key,
    phone_key_or_none,
    region_or_default,
)


@pytest.mark.parametrize(
    "written",
    [
        "+1 555-555-0101",
        "(555) 555-0101",
        "001 555 555 0101",
        "555 555 0101",
        "1-555-555-0101",
        "011 1 555 555 0101",
        "+15555550101",
        " +1 (555) 555-0101 ext. 12 ",
    ],
)
def test_every_way_of_writing_a_us_number_is_one_key(written: str) -> None:
    assert phone_key(written, "US") == "+15555550101"


def test_a_national_number_is_read_in_the_region_given() -> None:
    assert phone_key("020 7946 0958", "GB") == "+442079460958"
    assert phone_key("030 123456", "DE") == "+4930123456"
    # The same digits are another number in another region.
    assert phone_key("(555) 555-0101", "GB") != phone_key("(555) 555-0101", "US")


@pytest.mark.parametrize("region", ["US", "GB", "DE", "JP"])
def test_a_leading_plus_wins_over_the_region(region: str) -> None:
    assert phone_key("+44 20 7946 0958", region) == "+442079460958"
    assert phone_key("+1 555-555-0101", region) == "+15555550101"


@pytest.mark.parametrize(
    "written",
    ["12", "555-0101", "abc", "+1 555 555 0101 0101 0101", "00", "", "+", "0000000"],
)
def test_what_is_not_a_possible_number_is_refused_not_guessed(written: str) -> None:
    with pytest.raises(NotAPhoneNumber) as refused:
        phone_key(written, "US")
    assert str(refused.value) == f"{written.strip()!r} is not a phone number in region US"
    assert phone_key_or_none(written, "US") is None


def test_regions_are_iso_codes_with_us_by_default() -> None:
    assert is_region("US") and is_region("GB") and not is_region("ZZ")
    assert not is_region("us") and not is_region("USA")
    assert region_or_default(None) == DEFAULT_REGION == "US"
    assert region_or_default("GB") == "GB"
