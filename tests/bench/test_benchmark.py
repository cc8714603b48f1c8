"""The short benchmark runs end to end, so it cannot rot; its call counts are exact.

It starts the fake Zendesk and the service under gunicorn on 127.0.0.1, as the full run does,
with SQLite and short loops. Wall-clock figures are printed for the CI log, never asserted:
the machine's load decides them. Call counts and byte counts are decided by the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import benchmark, targets
from plugin.web.assets import MinifiedAssets
from tests.conftest import FOR_THE_LOG

REPO = Path(__file__).resolve().parents[2]
OWN_ASSETS = ("static/css/sidebar.css", "static/js/sidebar.js")
ON_DEMAND = {
    "review-css": "static/css/sidebar-review.css",
    "more-css": "static/css/sidebar-more.css",
    "actions-js": "static/js/sidebar-actions.js",
    "sync-js": "static/js/sidebar-sync.js",
    "amount-js": "static/js/sidebar-amount.js",
    "gestures-js": "static/js/sidebar-gestures.js",
}
PERCENTILES = {"p50_ms", "p95_ms", "p99_ms", "n"}


@pytest.fixture(scope="module")
def results() -> benchmark.JSONObject:
    figures = benchmark.run(benchmark.Options.quick())
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "benchmark-quick.json").write_text(json.dumps(figures, indent=2))
    return figures


def test_the_figures_are_printed(
    results: benchmark.JSONObject, record_property: Callable[[str, object], None]
) -> None:
    lines = [
        "",
        "benchmark --quick (figures, not asserted):",
        *("  " + line for line in targets.summary(results)),
    ]
    record_property(FOR_THE_LOG, "\n".join(lines))
    assert set(results) >= {"machine", "setup", "sqlite", "elapsed_seconds"}


def test_every_figure_is_there(results: benchmark.JSONObject) -> None:
    figures = results["sqlite"]
    for config in (figures["sidebar"], figures["naive"]):
        assert set(config["latency_ms"]["cold"]) >= PERCENTILES
        assert config["renders_per_second"] > 0
        assert config["server_cpu_ms_per_render"] > 0
    assert set(figures["sidebar"]["latency_ms"]["warm"]) >= PERCENTILES
    assert set(figures["noop"]["latency_ms"]) == PERCENTILES
    assert figures["noop"]["requests_per_second"] > 0
    assert set(figures["targets"]) == set(targets.TARGETS)
    assert all(isinstance(target["met"], bool) for target in figures["targets"].values())
    assert set(figures["ratios"]) >= {"cold_p50_over_upstream_call", "warm_throughput_over_noop"}
    assert set(figures["sizing"]["agents_within_plan_limit_at_80_percent"]) == set(
        targets.PLAN_LIMITS
    )


def test_nothing_failed(results: benchmark.JSONObject) -> None:
    figures = results["sqlite"]
    for config in (figures["sidebar"], figures["naive"]):
        assert config["saturation_failures"] == {}
        assert config["upstream_calls_per_view"]["failures"] == {}
    assert figures["noop"]["saturation_failures"] == {}


def test_cold_views_cost_one_call_and_warm_views_none(
    results: benchmark.JSONObject,
) -> None:
    # With the page's requester hint, one call answers the requester and their tickets.
    sidebar = results["sqlite"]["sidebar"]
    assert sidebar["latency_ms"]["cold"]["upstream_calls_per_view"] == 1.0
    assert sidebar["latency_ms"]["warm"]["upstream_calls_per_view"] == 0.0
    assert sidebar["saturation_upstream_calls_per_render"] == 0.0


def test_a_whole_view_costs_what_its_banner_costs(results: benchmark.JSONObject) -> None:
    # The launch and the cards read what the banner's one call brought: no call of their own.
    views = results["sqlite"]["sidebar"]["view_ms"]
    assert views["cold"]["upstream_calls_per_view"] == 1.0
    assert views["warm"]["upstream_calls_per_view"] == 0.0
    for figures in views.values():
        assert set(figures["client_ms"]) >= PERCENTILES
        # The page's two requests: the launch, and the banner with its cards in one answer.
        assert set(figures["server_ms_by_request_p50"]) == {"launch", "view"}
    assert views["cold"]["view_over_upstream_call_p50"] > 0
    assert set(views["cold"]["one_upstream_call_ms"]) >= PERCENTILES


def test_the_naive_configuration_calls_twice_for_every_view(
    results: benchmark.JSONObject,
) -> None:
    naive = results["sqlite"]["naive"]
    assert naive["latency_ms"]["cold"]["upstream_calls_per_view"] == 2.0
    assert naive["saturation_upstream_calls_per_render"] == 2.0
    # On the trace two views that overlap may share a fetch (the cache joins a fetch in
    # flight even when it keeps nothing): at most two calls a view, all but a few made.
    trace = naive["upstream_calls_per_view"]
    assert set(trace["calls"]) == {"ticket", "requested"}
    for calls in trace["calls"].values():
        assert 0.9 * trace["views"] <= calls <= trace["views"]


def test_the_cache_saves_calls_on_the_trace(results: benchmark.JSONObject) -> None:
    trace = results["sqlite"]["sidebar"]["upstream_calls_per_view"]
    assert trace["views"] == results["setup"]["trace"]["counted_views"]
    assert 0 < trace["calls_per_view"] < 2.0
    assert set(trace["calls"]) <= {"ticket", "requested"}


def test_the_bytes_of_a_view_are_the_sidebars_own_files(results: benchmark.JSONObject) -> None:
    sizes = results["sqlite"]["bytes_per_view"]
    # Served minified (plugin.web.assets): what the view loads is the files' minified bytes.
    assets = MinifiedAssets(REPO / "static")
    served = [assets.minified(path.removeprefix("static/")) for path in OWN_ASSETS]
    assert sizes["own_css_js_bytes"] == sum(len(made[0]) for made in served if made)
    assert sizes["own_css_js_bytes"] < sum((REPO / path).stat().st_size for path in OWN_ASSETS)
    # What only some cards use comes with them: counted apart, and in the worst view.
    later = {
        name: assets.minified(path.removeprefix("static/")) for name, path in ON_DEMAND.items()
    }
    assert sizes["own_css_js_on_demand_bytes"] == {
        name: len(made[0]) for name, made in later.items() if made
    }
    assert sizes["own_css_js_bytes_worst"] == sizes["own_css_js_bytes"] + sum(
        sizes["own_css_js_on_demand_bytes"].values()
    )
    assert sizes["sdk_excluded"] == [
        "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js"
    ]
    assert sizes["total_body_bytes"] == sum(sizes["body_bytes"].values())


def test_events_keep_the_view_path_off_the_helpdesk(results: benchmark.JSONObject) -> None:
    sidebar = results["sqlite"]["sidebar"]
    without = sidebar["upstream_calls_per_view"]["calls_per_view"]
    every, some_lost = sidebar["events"], sidebar["events_20_percent_lost"]
    for figures in (every, some_lost):
        assert figures["failures"] == {} and figures["events_refused"] == {}
        assert figures["events_sent"] > 0
        assert figures["upstream_calls"]["event_path_per_event"] <= 1.0
        assert set(figures["view_latency_ms"]["with_event"]) >= PERCENTILES
        assert set(figures["view_server_ms"]["with_event"]) >= PERCENTILES
    # Events move the calls off the agents' views; losing a fifth of them costs some back.
    assert every["upstream_calls"]["view_path_per_view"] < without
    assert some_lost["upstream_calls"]["view_path_per_view"] <= without
