"""The gestures' fault test, in small: 15 gestures of every kind given through a misbehaving
fake Shopify while workers are SIGKILLed three times, on SQLite (one worker) and PostgreSQL
(two at once). Each must exist exactly once in the shop; the full run is
`python -m bench.gesture_fault --gestures 200`."""

from __future__ import annotations

from pathlib import Path

from bench import gesture_fault


def test_every_gesture_is_given_exactly_once_through_faults_and_kills(
    database_url: str, tmp_path: Path
) -> None:
    options = gesture_fault.Options(gestures=15, kills=3, timeout_seconds=300)
    figures = gesture_fault.run_on(database_url, options, tmp_path)
    assert figures["kills"] == 3
    assert figures["gestures"] == figures["given"] == 15
    assert len(figures["by_kind"]) == 5
    assert (figures["duplicates_in_shop"], figures["missing_in_shop"], figures["dead"]) == (0, 0, 0)
    # The faults really happened, and the workers gave through them.
    assert figures["shop"]["faults"].get("server_error", 0) > 0
    assert figures["gesture_attempts"] > 15
    assert figures["passed"]
