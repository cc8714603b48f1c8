"""The Zendesk app package speaks the sidebar's languages: es.json and de.json beside en.json,
with the same keys, and the package still validates offline."""

from __future__ import annotations

import json

import pytest

from plugin.packaging import archive, zendesk_builder, zendesk_validator
from plugin.web.i18n import LANGUAGES


def _keys(tree: object, prefix: str = "") -> set[str]:
    if not isinstance(tree, dict):
        return {prefix}
    return {key for name, value in tree.items() for key in _keys(value, f"{prefix}.{name}")}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_the_package_has_each_language_with_every_english_key(language: str) -> None:
    files, problems = archive.collect_package_files(
        archive.SOURCE_ROOT / zendesk_builder.PACKAGE_DIR
    )
    assert problems == []
    english = json.loads(files["translations/en.json"])
    translated = json.loads(files[f"translations/{language}.json"])
    assert _keys(translated) == _keys(english)
    assert translated["app"]["short_description"] != english["app"]["short_description"]
    manifest = (archive.SOURCE_ROOT / "manifest.json").read_text(encoding="utf-8")
    filled = zendesk_builder.fill_service_url(manifest, "https://regulars.example.com")
    assert zendesk_validator.validate_manifest(filled, files=files) == []
