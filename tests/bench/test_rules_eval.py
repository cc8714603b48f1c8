"""The rule evaluation benchmark runs, in short, so it cannot rot; its figures are all there."""

from __future__ import annotations

import random

from bench import rules_eval


def test_a_short_run_reports_every_size() -> None:
    results = rules_eval.run(sizes=(3, 20), tickets=5, repeat=2)
    assert (results["tickets"], results["repeat"]) == (5, 2)
    assert list(results["sizes"]) == ["3", "20"]
    for size, figures in results["sizes"].items():
        assert figures["rules"] == int(size)
        assert set(figures) == {
            "rules",
            "build_ms",
            "median_ms",
            "p95_ms",
            "max_ms",
            "rules_matched_per_ticket",
            "suggestions_per_ticket",
        }
        assert 0 <= figures["median_ms"] <= figures["p95_ms"] <= figures["max_ms"]


def test_the_generated_rules_and_tickets_are_the_same_every_time() -> None:
    assert rules_eval.rules(30, random.Random(1)) == rules_eval.rules(30, random.Random(1))
    assert rules_eval.contexts(10, random.Random(1)) == rules_eval.contexts(10, random.Random(1))
