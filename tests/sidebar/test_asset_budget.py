"""Issue 19's byte budget: the sidebar's own CSS and JS that every view loads, counted as the
benchmark counts them, and every file the parts load on demand named and counted."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from bench.banner_load import own_css_js
from bench.targets import TARGETS
from plugin.models import Installation
from plugin.web.assets import SIDEBAR_ASSETS
from tests.sidebar.test_orders_views import launch_page

REPO = Path(__file__).resolve().parents[2]


def sizes(app: Flask, client: FlaskClient, installation: Installation) -> dict[str, object]:
    page = launch_page(app, client, installation)

    def fetch(path: str) -> bytes:
        with client.get(path) as answer:
            assert answer.status_code == 200, path
            return answer.get_data()

    return own_css_js(page, fetch)


def test_every_view_loads_at_most_the_budget_of_its_own_css_and_js(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    counted = sizes(app, client, demo_installation)
    assert 0 < int(str(counted["own_css_js_bytes"])) <= TARGETS["own_css_js_bytes"] == 10_240


def test_every_file_loaded_on_demand_is_counted_in_the_worst_view(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    counted = sizes(app, client, demo_installation)
    on_demand = counted["own_css_js_on_demand_bytes"]
    assert isinstance(on_demand, dict)
    # The page names every sidebar file but the two it links, and each one is counted.
    assert {
        f"{Path(name).stem.removeprefix('sidebar-')}-{Path(name).suffix[1:]}"
        for name in SIDEBAR_ASSETS[2:]
    } == set(on_demand)
    assert all(size > 0 for size in on_demand.values())
    assert counted["own_css_js_bytes_worst"] == int(str(counted["own_css_js_bytes"])) + sum(
        on_demand.values()
    )


def test_every_part_that_needs_a_file_names_one_the_page_gives() -> None:
    """A template's data-needs names what sidebar.js loads by the page's data-asset-* names: a
    misspelt one would load nothing and show the part unstyled."""
    page = (REPO / "templates" / "sidebar" / "page.html").read_text(encoding="utf-8")
    given = set(re.findall(r"data-asset-([a-z-]+)=", page))
    needed = {
        name
        for template in (REPO / "templates" / "sidebar").glob("*.html")
        for names in re.findall(r'data-needs="([^"]+)"', template.read_text(encoding="utf-8"))
        for name in names.split()
    }
    # The forms' script comes when a form is sent, not with a part.
    assert needed | {"actions-js"} == given
