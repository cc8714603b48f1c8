"""Jinja filters that turn the domain's numbers and dates into words an agent reads at a glance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from flask import Flask

from plugin.domain.exceptions import money
from plugin.domain.recognition import segment_label


def ago(moment: datetime | None, now: datetime) -> str:
    """Say how long ago something happened, coarsely: "just now", "3 hours ago", "2 years ago"."""
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if seconds < 90:
        return "just now"
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400)):
        if seconds >= size * (2 if unit != "day" else 1):
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    if seconds >= 3600:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return f"{int(seconds // 60)} minutes ago"


def tenure(since: date | None, today: date) -> str:
    """Say how long someone has been a customer: "since May 2014 · 11 years".

    Always a month with its four-digit year (or a full date): "Nov 24" could be a day or 2024.
    """
    if since is None:
        return "not a customer yet"
    years = today.year - since.year - ((today.month, today.day) < (since.month, since.day))
    if years >= 1:
        return f"since {since:%b %Y} · {years} year{'s' if years != 1 else ''}"
    days = (today - since).days
    if days < 31:
        return f"since {since:%b} {since.day}, {since.year} · new"
    return f"since {since:%b %Y} · {days // 30} months"


def fact_label(name: str) -> str:
    """Turn a fact name into a label: "lifetime_value" -> "Lifetime value"."""
    return name.replace("_", " ").strip().capitalize()


def fact_value(value: object) -> str:
    """Show a fact's value plainly: Yes/No, numbers with separators, lists joined."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
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
        return "today"
    if days == 1:
        return "yesterday"
    if days < 60:
        return f"{days} days ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def conditions_text(held: Iterable[str]) -> str:
    """The conditions that put a customer in a persona, already in words, as one line."""
    described = list(held)
    return "; ".join(described) if described else "matched"


def init_app(app: Flask) -> None:
    app.add_template_filter(days_ago)
    app.add_template_filter(conditions_text)
    app.add_template_filter(segment_label)
    app.add_template_filter(fact_label)
    app.add_template_filter(fact_value)
    app.add_template_filter(money)
    app.add_template_filter(ago)
    app.add_template_filter(tenure)
