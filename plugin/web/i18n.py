"""The agent's language: which locale a request is answered in, and Flask-Babel's set-up.

The helpdesk's page says the agent's locale (Zendesk's `currentUser.locale` as the `locale`
query argument of the sidebar's requests, Freshdesk's agent language as `locale` in the
request body); else the browser's languages; else English. docs/i18n.md says more.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Flask-Babel ships no type information: its few calls go through the typed functions below.
import flask_babel  # type: ignore[import-untyped]
from babel import Locale, UnknownLocaleError
from flask import Flask, g, has_request_context, request
from flask_babel.speaklater import LazyString  # type: ignore[import-untyped]
from jinja2 import pass_context
from jinja2.runtime import Context
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from plugin.domain.exceptions import money
from plugin.domain.wording import Amount, Words
from plugin.resources import resource_path

# English and the complete translations in translations/: add a language here and there.
LANGUAGES = ("en", "es", "de")
DEFAULT_LOCALE = "en_US"


def init_app(app: Flask) -> None:
    """Answer every request in its agent's locale, with the catalogs in translations/."""
    flask_babel.Babel(
        app,
        locale_selector=request_locale,
        default_locale=DEFAULT_LOCALE,
        default_translation_directories=str(resource_path("translations")),
    )
    # Templates look the catalog up once per render, into their context: Flask-Babel's own
    # callables look it up on every word (about 10 µs each, and a sidebar card says some
    # thirty), and even the request's copy in `g` costs two context lookups a word.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # jinja2.ext.i18n
        gettext=pass_context(lambda c, text: _catalog(c).ugettext(text)),
        ngettext=pass_context(lambda c, one, many, n: _catalog(c).ungettext(one, many, n)),
        pgettext=pass_context(lambda c, context, text: _catalog(c).upgettext(context, text)),
        npgettext=pass_context(
            lambda c, context, one, many, n: _catalog(c).unpgettext(context, one, many, n)
        ),
        newstyle=True,
    )
    app.context_processor(
        lambda: {
            _CATALOG: _translations(),
            # The page's language as HTML and JavaScript spell it: <html lang>, Intl's format.
            "locale_tag": request_locale().replace("_", "-"),
        }
    )
    # Sentences the Python code built (plugin.domain.wording), in the agent's language.
    app.add_template_filter(say)


def request_locale() -> str:
    """The request's locale as a string ("de", "es_419", "en_US"): part of any cache key.

    Its language is always one of LANGUAGES; the region, when the helpdesk says one, only
    changes how numbers and money look. Chosen once per request.
    """
    if not has_request_context():
        return DEFAULT_LOCALE
    chosen = g.get("regulars_locale")
    if chosen is None:
        chosen = _choose()
        g.regulars_locale = chosen
    return str(chosen)


def speak(tag: str | None) -> None:
    """Answer the rest of this request in `tag` (the helpdesk's word for its user's language),
    when we speak it; call it before anything is worded."""
    if tag and (parsed := supported_locale(tag)):
        g.regulars_locale = parsed
        flask_babel.refresh()  # forget a locale Flask-Babel chose earlier in the request
        g.pop("regulars_translations", None)


_CATALOG = "regulars_catalog"


def _catalog(context: Context) -> Any:
    """The catalog a template's context was given; the request's for a template rendered
    without Flask's context processors (a macro imported without context)."""
    return context.get(_CATALOG) or _translations()


def _translations() -> Any:
    """The request's catalog (Flask-Babel's), kept in `g` for the rest of the request."""
    if not g:
        return flask_babel.get_translations()  # outside an app context: Flask-Babel's null one
    found = g.get("regulars_translations")
    if found is None:
        found = g.regulars_translations = flask_babel.get_translations()
    return found


def _choose() -> str:
    said = request.args.get("locale")
    if said is None and request.blueprint == "freshdesk" and request.method == "POST":
        # Freshworks' request proxy sends the app's JSON body, whatever its content type says.
        body = request.get_json(silent=True, force=True)
        said = body.get("locale") if isinstance(body, dict) else None
    if isinstance(said, str) and (parsed := supported_locale(said)):
        return parsed
    return _browser_choice(request.headers.get("Accept-Language", ""))


@lru_cache(maxsize=256)
def _browser_choice(accept_language: str) -> str:
    """The language we speak that the browser's Accept-Language prefers; English otherwise.

    Kept per header text: a browser sends the same one with every request, and parsing it
    cost a warm banner view about a tenth of its time.
    """
    best = parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES)
    return DEFAULT_LOCALE if best in (None, "en") else str(best)


@lru_cache(maxsize=128)
def supported_locale(tag: str) -> str | None:
    """A helpdesk's locale tag ("de", "es-419", "pt-BR", "en_GB") as a locale we speak, or None."""
    if not 2 <= len(tag) <= 16:
        return None
    try:
        parsed = Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language not in LANGUAGES:
        return None
    if parsed.language == "en" and parsed.territory is None:
        return DEFAULT_LOCALE
    return str(parsed)


def babel_locale() -> Locale:
    """The request's locale as Babel's object (Flask-Babel's, cached per request)."""
    chosen = flask_babel.get_locale()
    return chosen if isinstance(chosen, Locale) else Locale.parse(DEFAULT_LOCALE)


# These read the request's catalog as the templates do (`_translations`), as Flask-Babel's own
# functions would, without looking its domain and catalog up again on each call.


def gettext(text: str, **variables: object) -> str:
    """`text` in the request's language, with `%(name)s` filled in from `variables`."""
    translated = str(_translations().ugettext(text))
    return translated % variables if variables else translated


def ngettext(singular: str, plural: str, num: int, **variables: object) -> str:
    """The singular or plural (as the request's language counts them), `%(num)d` filled in."""
    variables.setdefault("num", num)
    return str(_translations().ungettext(singular, plural, num)) % variables


def lazy_gettext(text: str) -> str:
    """`text`, translated when shown: for words kept at import time (a module's constants).

    Typed as the string it becomes: Jinja and str.join turn it into one on use.
    """
    return LazyString(gettext, text)  # type: ignore[no-any-return]


def say(sentence: str) -> str:
    """A sentence the Python code built, in the request's language.

    A `Words` (plugin.domain.wording) is translated, its amounts formatted for the locale and
    its nested sentences translated too; any other text is shown as it is (in English).
    """
    if isinstance(sentence, Amount):
        return money(
            sentence.cents,
            sentence.currency,
            request_locale(),
            to_the_cent=sentence.to_the_cent,
        )
    if not isinstance(sentence, Words):
        return str(sentence)
    values = {
        name: say(value) if isinstance(value, str) else value
        for name, value in sentence.values.items()
    }
    if sentence.plural is None:
        return gettext(sentence.text, **values)
    return ngettext(sentence.text, sentence.plural, sentence.num, **values)
