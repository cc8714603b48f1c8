"""The load-and-faults run, in small: 10 agents for 15 s, the helpdesk down from 5 s to 10 s.

It starts the fake Zendesk, the service under gunicorn with the production configuration
(SQLite) and one outbox worker, as the full run does (`python -m bench.load_faults`: 50 agents
for 60 s, the helpdesk down for 20 s). Latencies are printed for the CI log, never asserted
(the machine's load decides them); what is asserted is decided by the code: no request fails,
every view during the outage answers within the time budget, from the cache and marked stale
where it can, and every action arrives on its ticket exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import load_faults
from tests.conftest import FOR_THE_LOG

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> load_faults.JSONObject:
    figures = load_faults.run(load_faults.Options.quick())
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "load-faults-quick.json").write_text(json.dumps(figures, indent=2))
    return figures


def test_the_figures_are_printed(
    results: load_faults.JSONObject, record_property: Callable[[str, object], None]
) -> None:
    lines = [
        "",
        "load_faults --quick (latencies printed, not asserted):",
        *("  " + line for line in load_faults.summary(results)),
    ]
    record_property(FOR_THE_LOG, "\n".join(lines))
    assert set(results["load"]["latency_ms"]) == {"p50_ms", "p95_ms", "p99_ms", "max_ms", "n"}
    assert set(results["by_window"]) == set(load_faults.WINDOWS)
    assert results["serving"]["longest_gap_seconds"] >= 0


def test_no_request_failed(results: load_faults.JSONObject) -> None:
    load = results["load"]
    assert load["errors"] == 0, load["error_examples"]
    assert load["errors_by_cause"] == {}
    # The agents did what agents do: every kind of request was made.
    assert set(load["by_kind"]) == set(load_faults.KINDS)
    assert all(window["errors"] == 0 for window in results["by_window"].values())
    assert results["server"]["log_error_lines"] == 0
    assert results["server"]["outbox_worker_log_error_lines"] == 0


def test_the_sidebar_answered_from_its_cache_marked_stale_within_the_budget(
    results: load_faults.JSONObject,
) -> None:
    outage = results["outage"]
    assert outage["down_at_second"] is not None and outage["up_at_second"] is not None
    assert results["by_window"]["during"]["requests"] > 0
    assert outage["banner_stale"] > 0
    # A requester the service had answered before is never left without an answer.
    assert outage["no_data_though_seen"] == 0
    assert outage["over_budget"] == 0
    assert outage["max_view_ms"] <= outage["budget_with_margin_ms"]
    # The calls the service made while the helpdesk was down were refused, and counted.
    assert outage["upstream_calls"]["during"] > 0


def test_every_action_arrived_on_its_ticket_exactly_once(
    results: load_faults.JSONObject,
) -> None:
    actions = results["actions"]
    assert actions["recorded"] > 0
    assert actions["recorded_during_outage"] > 0
    assert actions["answered_recorded_not_stored"] == 0
    assert actions["open_after_drain"] == 0
    assert actions["delivered"] == actions["recorded"]
    assert (actions["duplicates"], actions["lost"], actions["misplaced"], actions["dead"]) == (
        0,
        0,
        0,
        0,
    )
    # Deliveries were tried during the outage and retried after it.
    assert actions["retries"] > 0


def test_every_target_is_met(results: load_faults.JSONObject) -> None:
    assert {name: target["met"] for name, target in results["targets"].items()} == {
        name: True for name in results["targets"]
    }
    assert results["passed"]
