"""Every visible word of the translated templates is marked for translation.

A template's text outside `{{ _() }}`, `ngettext` and `{% trans %}` that has a letter in it is
English nobody can translate; so is a literal aria-label, title or placeholder. Jinja comments,
the inside of tags (class names, data attributes) and `<code>` (commands, field names) are not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# The templates whose every string is translated (docs/i18n.md): the sidebar and the console.
TRANSLATED = sorted(
    [
        *(TEMPLATES / "sidebar").glob("*.html"),
        *(TEMPLATES / "freshdesk").glob("*.html"),
        *(TEMPLATES / "console").glob("*.html"),
    ]
)
# Words that are the same in every language: the product's name, abbreviations, symbols.
ALLOWED = {"Regulars", "RFM", "UTC", "✓", "Shopify"}
SHOWN_ATTRIBUTES = re.compile(r'\b(aria-label|title|placeholder|alt)="([^"{]*)"')
CODE = re.compile(r"<code\b[^>]*>.*?</code>", re.S)
DOMAIN = re.compile(r"[\w-]+(\.[\w-]+)+")
# An attribute a macro writes into the tag it is called in: markup, not words.
MACRO_ATTRIBUTE = re.compile(r'[\w-]+="[^"]*"?')


def unmarked_text(source: str) -> list[str]:
    """The visible texts with letters that no gettext call or trans block wraps."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    source = CODE.sub("", source)
    found: list[str] = []
    in_tag = False
    in_trans = False
    block_starts = False
    for _line, kind, value in env.lex(source):
        if kind == "whitespace":
            continue
        if block_starts and kind == "name":
            in_trans = value == "trans" or (in_trans and value != "endtrans")
        block_starts = kind == "block_begin"
        if kind != "data" or in_trans:
            continue
        found.extend(text for _a, text in SHOWN_ATTRIBUTES.findall(value) if _has_words(text))
        visible = []
        for char in value:
            if char == "<":
                in_tag = True
            elif char == ">":
                in_tag = False
            elif not in_tag:
                visible.append(char)
        text = " ".join(MACRO_ATTRIBUTE.sub("", "".join(visible)).split())
        if _has_words(text):
            found.append(text)
    return found


def _has_words(text: str) -> bool:
    if DOMAIN.fullmatch(text.strip()):
        return False  # an example address ("acme.myshopify.com") reads the same everywhere
    words = [w for w in re.findall(r"[^\W\d_]+", text) if w not in ALLOWED]
    return bool(words)


@pytest.mark.parametrize("template", TRANSLATED, ids=lambda path: path.name)
def test_every_visible_string_is_marked_for_translation(template: Path) -> None:
    assert unmarked_text(template.read_text(encoding="utf-8")) == []


def test_the_check_finds_unmarked_text_and_attributes() -> None:
    source = (
        '<p class="x">{{ _("Fine") }}</p>\n<p>Plain English</p>{# a comment #}\n'
        '<ul aria-label="Segments"></ul><b>{{ n }} · RFM</b>{% trans %}Also fine{% endtrans %}'
        "<p><code>flask outbox work</code> {{ _('Run') }}</p>"
    )
    assert unmarked_text(source) == ["Plain English", "Segments"]
