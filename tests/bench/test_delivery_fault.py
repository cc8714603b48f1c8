"""The outbox's fault test, in small: 60 actions through a misbehaving fake Zendesk, one worker
SIGKILLed and replaced, on SQLite (one worker) and PostgreSQL (two at once). Every action must
arrive exactly once; the full run is `python -m bench.delivery_fault --actions 1000`."""

from __future__ import annotations

from pathlib import Path

from bench import delivery_fault


def test_every_action_arrives_exactly_once_through_faults_and_a_kill(
    database_url: str, tmp_path: Path
) -> None:
    options = delivery_fault.Options(actions=60, kills=1, timeout_seconds=240)
    figures = delivery_fault.run_on(database_url, options, tmp_path)
    assert figures["kills"] == 1
    assert figures["actions"] == figures["delivered"] == 60
    assert (figures["duplicates"], figures["lost"], figures["misplaced"], figures["dead"]) == (
        0,
        0,
        0,
        0,
    )
    causes = figures["retries_by_cause"]
    # The faults really happened, and the workers really retried through them.
    assert causes["server_error_5xx"] > 0 and causes["rate_limited_429"] > 0
    assert figures["retries"] > 0
    assert figures["passed"]
