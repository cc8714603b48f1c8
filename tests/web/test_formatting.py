from datetime import date, datetime, timedelta

from plugin.domain.exceptions import money
from plugin.web.formatting import ago, tenure

NOW = datetime(2026, 11, 23, 12, 0)


def test_money_rounds_to_whole_units() -> None:
    assert money(123_456) == "$1,235"
    assert money(0, "EUR") == "€0"
    assert money(500, "SEK") == "SEK\u00a05"


def test_ago_is_coarse() -> None:
    assert ago(None, NOW) == "never"
    assert ago(NOW - timedelta(seconds=30), NOW) == "just now"
    assert ago(NOW - timedelta(minutes=5), NOW) == "5 minutes ago"
    assert ago(NOW - timedelta(hours=3), NOW) == "3 hours ago"
    assert ago(NOW - timedelta(days=1), NOW) == "1 day ago"
    assert ago(NOW - timedelta(days=45), NOW) == "45 days ago"
    assert ago(NOW - timedelta(days=70), NOW) == "2 months ago"
    assert ago(NOW - timedelta(days=800), NOW) == "2 years ago"


def test_tenure() -> None:
    today = NOW.date()
    # Dates are never ambiguous (issue 15): a month always has its four-digit year.
    assert tenure(date(2014, 5, 1), today) == "since May 2014 · 12 years"
    assert tenure(date(2025, 12, 1), today) == "since Dec 2025 · 11 months"
    assert tenure(date(2026, 11, 20), today) == "since Nov 20, 2026 · new"
    assert tenure(date(2024, 11, 24), today) == "since Nov 2024 · 1 year"
    assert tenure(None, today) == "not a customer yet"
