"""Phone numbers as keys: however a number is written, read in a region, it becomes E.164.

`+1 555-555-0101`, `(555) 555-0101` and `001 555 555 0101` read in the US are all
`+15555550101`, so a caller is recognized whichever way the shop stored their number.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "US"
# What people put around a number's digits; only used to see whether it starts with `00`.
_NOISE = re.compile(r"[\s().\-/]")


class NotAPhoneNumber(ValueError):
    """The text is not a possible phone number when read in the region."""

    def __init__(self, text: str, region: str) -> None:
        super().__init__(f"{text!r} is not a phone number in region {region}")
        self.text = text
        self.region = region


def phone_key(text: str, region: str) -> str:
    """The number in E.164 (`+15555550101`); raise NotAPhoneNumber if it is not a possible one.

    A number without a leading `+` is read as dialled in `region` (ISO 3166 alpha-2, "US"),
    so `(555) 555-0101` is a US number there. When that reading is not a possible number, a
    leading `00` is read as the international prefix most of the world dials (the US dials
    011), since `001 555 555 0101` is how a European writes a US number. "Possible" is a
    length check, not whether the number was ever assigned: the fictional 555 numbers pass.
    An extension is not part of the key.
    """
    stripped = text.strip()
    digits = _NOISE.sub("", stripped)
    readings = [stripped]
    if digits.startswith("00") and not digits.startswith("000"):
        readings.append("+" + digits[2:])  # only when the region's own rules found nothing
    for reading in readings:
        try:
            number = phonenumbers.parse(reading, region)
        except phonenumbers.NumberParseException:
            continue
        # IS_POSSIBLE_LOCAL_ONLY (a 7-digit US number without its area code) is no key.
        reason = phonenumbers.is_possible_number_with_reason(number)
        if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise NotAPhoneNumber(stripped, region)


def phone_key_or_none(text: str, region: str) -> str | None:
    """`phone_key`, or None for text that is not a possible number (it matches nothing)."""
    try:
        return phone_key(text, region)
    except NotAPhoneNumber:
        return None


def is_region(code: str) -> bool:
    """Whether `code` is a region phone numbers are known for: "US", "GB", "DE"..."""
    return code in phonenumbers.SUPPORTED_REGIONS


def region_or_default(code: str | None) -> str:
    """An installation's stored region, or DEFAULT_REGION when none was set."""
    return code if code else DEFAULT_REGION
