"""Settings for reading the helpdesk: defaults, overrides and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from plugin.config import ConfigError, Settings, load_settings

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


def test_every_default_is_the_same_from_the_environment_as_in_the_class(tmp_path: Path) -> None:
    from_environment = load_settings(BASE, tmp_path)
    differ = {
        f.name: (f.default, getattr(from_environment, f.name))
        for f in dataclasses.fields(Settings)
        # No encryption keys in the class means the instance folder's key, which the
        # environment's reading fills in.
        if f.default is not dataclasses.MISSING and f.name != "encryption_keys"
        if getattr(from_environment, f.name) != f.default
    }
    assert differ == {}


@pytest.mark.parametrize("demo", ["true", "false"])
def test_the_outbox_runs_in_process_only_when_asked(tmp_path: Path, demo: str) -> None:
    assert not load_settings(BASE | {"REGULARS_DEMO": demo}, tmp_path).outbox_in_process
    asked = BASE | {"REGULARS_DEMO": demo, "REGULARS_OUTBOX_IN_PROCESS": "true"}
    assert load_settings(asked, tmp_path).outbox_in_process


def test_the_demo_script_runs_the_outbox_in_process() -> None:
    script = (Path(__file__).resolve().parents[1] / "scripts" / "demo.sh").read_text()
    assert 'export REGULARS_OUTBOX_IN_PROCESS="${REGULARS_OUTBOX_IN_PROCESS:-true}"' in script
