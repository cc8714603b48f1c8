"""The sidebar benchmark runs, in short, so it cannot rot; its call counts are exact."""

from __future__ import annotations

from bench import sidebar_views


def test_a_short_run_prints_cold_and_warm_figures() -> None:
    results = sidebar_views.run(latency_ms=5, views=3)
    # With the page's hint, one call (the requester's tickets, the requester sideloaded);
    # without it, the ticket and then the history.
    for label, cold_calls in (("with_requester_hint", 1.0), ("without_hint", 2.0)):
        figures = results[label]
        assert isinstance(figures, dict)
        assert figures["cold"]["upstream_calls_per_view"] == cold_calls
        assert figures["warm"]["upstream_calls_per_view"] == 0.0
        assert figures["cold"]["p50_ms"] > 0
