"""Jinja filters that turn the domain's numbers and dates into words an agent reads at a glance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from babel.dates import format_date, format_timedelta
from flask import Flask

from plugin.domain.exceptions import money
from plugin.domain.recognition import segment_label
from plugin.web.i18n import babel_locale, gettext, ngettext, request_locale


def ago(moment: datetime | None, now: datetime) -> str:
    """Say how long ago something happened, coarsely: "just now", "3 hours ago", "2 years ago".

    In the request's language ("vor 3 Stunden"), worded by Babel's format_timedelta.
    """
    if moment is None:
        return gettext("never")
    seconds = (now - moment).total_seconds()
    if seconds < 90:
        return gettext("just now")
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400)):
        if seconds >= size * (2 if unit != "day" else 1):
            return _past(int(seconds // size), size)
    if seconds >= 3600:
        return _past(int(seconds // 3600), 3600)
    return _past(max(int(seconds // 60), 1), 60)


def _past(count: int, unit_seconds: int) -> str:
    """`count` units ago, in words: Babel words the exact multiple in that unit, because the
    threshold (the count itself) is above what every larger unit comes to."""
    return format_timedelta(
        timedelta(seconds=-count * unit_seconds),
        threshold=count,
        add_direction=True,
        locale=babel_locale(),
    )


def tenure(since: date | None, today: date) -> str:
    """Say how long someone has been a customer: "since May 2014 · 11 years".

    Always a month with its four-digit year (or a full date): "Nov 24" could be a day or 2024.
    """
    if since is None:
        return gettext("not a customer yet")
    locale = babel_locale()
    years = today.year - since.year - ((today.month, today.day) < (since.month, since.day))
    month = format_date(since, "MMM y", locale=locale)
    if years >= 1:
        return ngettext(
            "since %(month)s · %(num)d year", "since %(month)s · %(num)d years", years, month=month
        )
    days = (today - since).days
    if days < 31:
        return gettext("since %(day)s · new", day=format_date(since, "medium", locale=locale))
    return ngettext(
        "since %(month)s · %(num)d month",
        "since %(month)s · %(num)d months",
        days // 30,
        month=month,
    )


def day_month_year(moment: date) -> str:
    """A day in the request's language, never ambiguous: "5 Mar 2026", "5. März 2026"."""
    return format_date(moment, "d MMM y", locale=babel_locale())


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


def days_ago(day: date, today: date) -> str:
    """Say how long ago a day was: "today", "yesterday", "12 days ago", "3 months ago"."""
    days = (today - day).days
    if days <= 0:
        return gettext("today")
    if days == 1:
        return gettext("yesterday")
    if days < 60:
        return _past(days, 86400)
    if days < 730:
        return _past(days // 30, 30 * 86400)
    return _past(days // 365, 365 * 86400)


def conditions_text(held: Iterable[str]) -> str:
    """The conditions that put a customer in a persona, already in words, as one line."""
    described = list(held)
    return "; ".join(described) if described else "matched"


def money_for_agent(cents: int, currency: str = "USD") -> str:
    """The `money` filter: the domain's whole-unit money in the request's locale."""
    return money(cents, currency, request_locale())


def init_app(app: Flask) -> None:
    app.add_template_filter(days_ago)
    app.add_template_filter(conditions_text)
    app.add_template_filter(segment_label)
    app.add_template_filter(fact_label)
    app.add_template_filter(fact_value)
    app.add_template_filter(money_for_agent, "money")
    app.add_template_filter(ago)
    app.add_template_filter(tenure)
    app.add_template_filter(day_month_year)
