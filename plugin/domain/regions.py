"""A helpdesk account's country as a phone region: from its IANA time zone or its country name.

Both come from the time zone database the system carries (`zone.tab`: each zone's country;
`iso3166.tab`: each country's name), so nothing here is a hand-kept list of countries but the
few other names people commonly give theirs (`ALIASES`). What cannot be read is None, never
a guess: the installation then keeps the default region until an admin sets one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import phonenumbers

ZONEINFO = Path("/usr/share/zoneinfo")
# Names for a country that iso3166.tab does not use (it says "Britain (UK)", "United States").
ALIASES = {
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "UNITED STATES OF AMERICA": "US",
    "AMERICA": "US",
    "UK": "GB",
    "U.K.": "GB",
    "UNITED KINGDOM": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "NORTHERN IRELAND": "GB",
    "UAE": "AE",
    "HOLLAND": "NL",
    "THE NETHERLANDS": "NL",
    "SOUTH KOREA": "KR",
    "KOREA": "KR",
    "RUSSIA": "RU",
    "CZECHIA": "CZ",
    "CZECH REPUBLIC": "CZ",
    "VIETNAM": "VN",
    "DEUTSCHLAND": "DE",
}


def region_of_time_zone(zone: str | None, *, zoneinfo: Path = ZONEINFO) -> str | None:
    """The country of an IANA time zone (`America/New_York` -> US), if phone numbers know it."""
    if not zone:
        return None
    return _phone_region(_zone_countries(zoneinfo).get(zone.strip()))


def region_of_country(name: str | None, *, zoneinfo: Path = ZONEINFO) -> str | None:
    """The region of a country given by code (`GB`) or name (`United Kingdom`, `USA`)."""
    if not name:
        return None
    text = " ".join(name.split()).upper()
    if len(text) == 2:
        return _phone_region(text)
    code = ALIASES.get(text) or _country_names(zoneinfo).get(text)
    return _phone_region(code)


def _phone_region(code: str | None) -> str | None:
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


@functools.cache
def _zone_countries(zoneinfo: Path) -> dict[str, str]:
    """zone.tab: `US<tab>+404251-0740023<tab>America/New_York<tab>Eastern (most areas)`."""
    countries: dict[str, str] = {}
    for fields in _tab_rows(zoneinfo / "zone.tab"):
        if len(fields) >= 3:
            countries[fields[2]] = fields[0]
    return countries


@functools.cache
def _country_names(zoneinfo: Path) -> dict[str, str]:
    """iso3166.tab: `GB<tab>Britain (UK)`; the name in upper case, and its words before `(`."""
    names: dict[str, str] = {}
    for fields in _tab_rows(zoneinfo / "iso3166.tab"):
        if len(fields) >= 2:
            name = fields[1].upper()
            names[name] = fields[0]
            names.setdefault(name.split("(")[0].strip(), fields[0])
            names.setdefault(name.replace("&", "AND"), fields[0])
    return names


def _tab_rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:  # a system without the time zone database: nothing is known
        return []
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
