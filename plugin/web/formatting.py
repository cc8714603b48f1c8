"""Jinja filters that turn the domain's numbers and dates into words an agent reads at a glance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache

from babel.dates import format_date, format_timedelta
from flask import Flask

from plugin.domain.exceptions import money
from plugin.domain.recognition import segment_label
from plugin.web.i18n import gettext, ngettext, request_locale, say

# Each time word is made in two steps: a bucket (plain numbers, no Babel, cheap) and its words
# (Babel, the request's language). The words depend on nothing but the bucket, the locale and
# the dates the banner already shows, so a cache of rendered HTML can key on the buckets
# (plugin/sidebar/views.py, banner_clock) and never word anything on a hit.

YEAR, MONTH, DAY, HOUR, MINUTE = 365 * 86400, 30 * 86400, 86400, 3600, 60


def ago_bucket(moment: datetime | None, now: datetime) -> tuple[str, int] | None:
    """What `ago` says, as numbers: ("just now", 0), or a unit's size in seconds and a count."""
    if moment is None:
        return None
    seconds = (now - moment).total_seconds()
    if seconds < 90:
        return ("now", 0)
    for size, at_least in ((YEAR, 2), (MONTH, 2), (DAY, 1)):
        if seconds >= size * at_least:
            return (str(size), int(seconds // size))
    if seconds >= HOUR:
        return (str(HOUR), int(seconds // HOUR))
    return (str(MINUTE), max(int(seconds // MINUTE), 1))


def ago(moment: datetime | None, now: datetime) -> str:
    """Say how long ago something happened, coarsely: "just now", "3 hours ago", "2 years ago".

    In the request's language ("vor 3 Stunden"), worded by Babel's format_timedelta.
    """
    return _ago_words(ago_bucket(moment, now))


def _ago_words(bucket: tuple[str, int] | None) -> str:
    if bucket is None:
        return gettext("never")
    unit, count = bucket
    if unit == "now":
        return gettext("just now")
    return _past(count, int(unit))


def _past(count: int, unit_seconds: int) -> str:
    """`count` units ago, in words: Babel words the exact multiple in that unit, because the
    threshold (the count itself) is above what every larger unit comes to."""
    return _past_words(count, unit_seconds, request_locale())


# The words depend on nothing but their arguments and the locale, and Babel takes some 20-40
# µs to make them: a first view of a customer says several.
@lru_cache(maxsize=4096)
def _past_words(count: int, unit_seconds: int, locale: str) -> str:
    return format_timedelta(
        timedelta(seconds=-count * unit_seconds),
        threshold=count,
        add_direction=True,
        locale=locale,
    )


def tenure_bucket(since: date | None, today: date) -> tuple[str, int] | None:
    """What `tenure` says besides `since` itself: whole years, "new", or whole months."""
    if since is None:
        return None
    years = today.year - since.year - ((today.month, today.day) < (since.month, since.day))
    if years >= 1:
        return ("years", years)
    days = (today - since).days
    return ("new", 0) if days < 31 else ("months", days // 30)


def tenure(since: date | None, today: date) -> str:
    """Say how long someone has been a customer: "since May 2014 · 11 years".

    Always a month with its four-digit year (or a full date): "Nov 24" could be a day or 2024.
    """
    bucket = tenure_bucket(since, today)
    if since is None or bucket is None:
        return gettext("not a customer yet")
    return _tenure_words(since, bucket, request_locale())


@lru_cache(maxsize=4096)
def _tenure_words(since: date, bucket: tuple[str, int], locale: str) -> str:
    """`tenure`'s words; called in a request in `locale`, the language its words are in."""
    kind, count = bucket
    if kind == "new":
        return gettext("since %(day)s · new", day=format_date(since, "medium", locale=locale))
    month = format_date(since, "MMM y", locale=locale)
    if kind == "years":
        return ngettext(
            "since %(month)s · %(num)d year", "since %(month)s · %(num)d years", count, month=month
        )
    return ngettext(
        "since %(month)s · %(num)d month",
        "since %(month)s · %(num)d months",
        count,
        month=month,
    )


def day_month_year(moment: date) -> str:
    """A day in the request's language, never ambiguous: "5 Mar 2026", "5. März 2026"."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return _day_month_year(day, request_locale())


@lru_cache(maxsize=4096)
def _day_month_year(day: date, locale: str) -> str:
    # An orders card says one per order: Babel's 20-40 µs each, for days that repeat.
    return format_date(day, "d MMM y", locale=locale)


def fact_label(name: str) -> str:
    """Turn a fact name into a label: "lifetime_value" -> "Lifetime value"."""
    return name.replace("_", " ").strip().capitalize()


def fact_value(value: object) -> str:
    """Show a fact's value plainly: Yes/No, numbers with separators, lists joined."""
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(fact_value(item) for item in value)
    return str(value)


def days_ago_bucket(day: date, today: date) -> tuple[str, int]:
    """What `days_ago` says, as numbers: today, yesterday, or a unit's size in days and a count."""
    days = (today - day).days
    if days <= 0:
        return ("today", 0)
    if days == 1:
        return ("yesterday", 1)
    if days < 60:
        return ("1", days)
    if days < 730:
        return ("30", days // 30)
    return ("365", days // 365)


def days_ago(day: date, today: date) -> str:
    """Say how long ago a day was: "today", "yesterday", "12 days ago", "3 months ago"."""
    unit, count = days_ago_bucket(day, today)
    if unit == "today":
        return gettext("today")
    if unit == "yesterday":
        return gettext("yesterday")
    return _past(count, int(unit) * DAY)


def conditions_text(held: Iterable[str]) -> str:
    """The conditions that put a customer in a persona, already in words, as one line."""
    described = list(held)
    return "; ".join(described) if described else "matched"


def money_for_agent(cents: int, currency: str = "USD") -> str:
    """The `money` filter: the domain's whole-unit money in the request's locale."""
    return money(cents, currency, request_locale())


def segment_words(value: str) -> str:
    """The `segment_label` filter: a stored segment value's label in the request's language."""
    return say(segment_label(value))


def init_app(app: Flask) -> None:
    app.add_template_filter(days_ago)
    app.add_template_filter(conditions_text)
    app.add_template_filter(segment_words, "segment_label")
    app.add_template_filter(fact_label)
    app.add_template_filter(fact_value)
    app.add_template_filter(money_for_agent, "money")
    app.add_template_filter(ago)
    app.add_template_filter(tenure)
    app.add_template_filter(day_month_year)
