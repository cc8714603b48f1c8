"""Settings for reading the helpdesk: defaults, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.config import ConfigError, load_settings

BASE = {"REGULARS_SECRET_KEY": "k" * 40}


def test_helpdesk_reading_defaults(tmp_path: Path) -> None:
    settings = load_settings(BASE, tmp_path)
    assert settings.upstream_budget_ms == 2500
    assert (settings.ticket_cache_seconds, settings.history_cache_seconds) == (120, 600)
    assert settings.helpdesk_budget_share == 0.8


def test_helpdesk_reading_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        BASE
        | {
            "REGULARS_UPSTREAM_BUDGET_MS": "800",
            "REGULARS_TICKET_CACHE_SECONDS": "0",
            "REGULARS_HELPDESK_BUDGET_SHARE": "0.2",
        },
        tmp_path,
    )
    assert settings.upstream_budget_ms == 800
    assert settings.ticket_cache_seconds == 0
    assert settings.helpdesk_budget_share == 0.2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REGULARS_UPSTREAM_BUDGET_MS", "50", "at least 100"),
        ("REGULARS_UPSTREAM_WORKERS", "many", "whole number"),
        ("REGULARS_HELPDESK_BUDGET_SHARE", "1.5", "at most 1"),
        ("REGULARS_HELPDESK_BUDGET_SHARE", "half", "between 0 and 1"),
    ],
)
def test_bad_values_say_which_setting_and_why(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(BASE | {name: value}, tmp_path)
    assert name in str(raised.value)


def test_settings_repr_hides_secrets(tmp_path: Path) -> None:
    settings = load_settings(
        BASE | {"DATABASE_URL": "postgresql://regulars:hunter2@db/regulars"}, tmp_path
    )
    assert "hunter2" not in repr(settings) and "k" * 40 not in repr(settings)
