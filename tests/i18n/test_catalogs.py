"""The Spanish and German catalogs are complete, and hold every string the code marks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from plugin.web.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"


def _catalog(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_a_catalog_has_no_missing_or_fuzzy_entry(language: str) -> None:
    with _catalog(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    missing = [
        message.id
        for message in catalog
        if message.id
        and not (all(message.string) if isinstance(message.string, tuple) else message.string)
    ]
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
    assert (missing, fuzzy) == ([], [])
    assert len(catalog) > 100


def test_the_catalogs_hold_every_marked_string(tmp_path: Path) -> None:
    """A string marked since the last `pybabel update` would show in English: extract again."""
    extracted = tmp_path / "messages.pot"
    subprocess.run(
        [str(Path(sys.executable).parent / "pybabel"), "-q", "extract", "-F", "babel.cfg",
         "-k", "lazy_gettext", "--no-location", "-o", str(extracted), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with extracted.open("rb") as pot:
        marked = {message.id for message in read_po(pot) if message.id}
    for language in ("es", "de"):
        with _catalog(language).open("rb") as po:
            held = {message.id for message in read_po(po, locale=language) if message.id}
        assert sorted(map(str, marked - held)) == [], language
