"""A banner served from the render cache is, at every moment, the banner a fresh render gives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from plugin.clock import utcnow
from plugin.sidebar import views
from plugin.sidebar.read_cache import ReadCache
from plugin.sidebar.rendered import RenderedParts, digest
from tests.sidebar.conftest import Sidebar

# Either side of every step the banner's relative times take: "just now" (90 s), minutes,
# hours, days, "N months" (30 days, from 2 on), years (365 days, from 2 on), "yesterday".
SECONDS = [0, 1, 59, 89, 91, 150, 3_599, 3_601, 7_300, 86_399, 86_401, 90_000, 172_900]
DAYS = [3, 29, 31, 59, 61, 62, 364, 366, 400, 729, 731, 1_100]
# And through a whole day, every 2 hours, twice: each date shown turns at its own time of day.
HOURS = [24 * day + hour for day in (3, 45) for hour in range(0, 25, 2)]
# Past two years, where "2 years ago" holds for a year: every 3 days, so that tenures,
# anniversaries and "N months ago" turn while the coarser words stand still.
LATER = range(740, 1_100, 3)
OFFSETS = (
    [timedelta(seconds=s) for s in SECONDS]
    + [timedelta(days=d) for d in DAYS]
    + [timedelta(hours=h) for h in HOURS]
    + [timedelta(days=d) for d in LATER]
)


def test_a_cached_banner_is_a_fresh_render_at_every_moment(
    sidebar: Sidebar, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = sidebar.app.extensions["regulars.helpdesks"]
    rendered: RenderedParts = shared.rendered
    # The stored reads held for the whole test: a cached and a fresh render of one moment must
    # see the same customer card, not one the 10 s read cache reloaded between them (at a
    # later moment, so with another tier) on a loaded machine.
    shared.reads = ReadCache(ttl_seconds=3600)
    data = sidebar.zendesk.app_state.data
    by_requester: dict[Any, dict[str, Any]] = {}
    for ticket in sorted(data.tickets.values(), key=lambda t: int(t["id"])):
        by_requester.setdefault(ticket["requester_id"], ticket)
    tickets = list(by_requester.values())[:8]
    start = utcnow()
    moment: list[datetime] = [start]
    monkeypatch.setattr(views, "utcnow", lambda: moment[0])
    compared = 0
    for offset in OFFSETS:
        moment[0] = start + offset
        for ticket in tickets:
            sidebar.ticket = ticket
            cached = sidebar.banner()
            rendered.enabled = False
            try:
                fresh = sidebar.banner()
            finally:
                rendered.enabled = True
            assert cached == fresh, (ticket["id"], offset)
            compared += 1
    assert compared == len(OFFSETS) * len(tickets)
    # Most views were served from the cache: the words change far less often than the moment.
    assert rendered.hits > rendered.misses > len(tickets)


def test_a_changed_input_is_another_entry_never_the_old_html(sidebar: Sidebar) -> None:
    rendered: RenderedParts = sidebar.app.extensions["regulars.helpdesks"].rendered
    # Counted from here: the launch's page is kept there too (`views.sidebar_page`).
    misses, hits, entries = rendered.misses, rendered.hits, len(rendered)
    first = sidebar.banner()
    assert sidebar.banner() == first
    assert (rendered.misses - misses, rendered.hits - hits) == (1, 1)
    # The page's ticket fields are not what the banner shows; the same banner, still one entry.
    sidebar.banner(subject="Where is my order?")
    assert len(rendered) - entries == 1


def test_inputs_that_cannot_be_pickled_are_rendered_every_time() -> None:
    rendered = RenderedParts()
    calls: list[int] = []

    def render() -> str:
        calls.append(1)
        return "<p>hi</p>"

    unpicklable = (lambda: None,)
    assert digest(unpicklable) is None
    assert rendered.render(unpicklable, render) == "<p>hi</p>"
    assert rendered.render(unpicklable, render) == "<p>hi</p>"
    assert len(calls) == 2 and len(rendered) == 0
    assert rendered.render(("a", 1), render) == rendered.render(("a", 1), render)
    assert len(calls) == 3 and len(rendered) == 1


@dataclass(frozen=True)
class Card:
    name: str
    tags: tuple[str, ...] = ()


def test_a_banner_is_built_again_exactly_when_a_source_changes() -> None:
    rendered = RenderedParts()
    builds: list[tuple[object, ...]] = []

    def built(*sources: object) -> object:
        def build() -> object:
            builds.append(sources)
            return ("banner", *sources)

        return rendered.built((1, "ticket"), sources, build)

    card = Card("Ada")
    first = built(card, 5)
    assert built(card, 5) is first  # the same objects: kept
    assert built(Card("Ada"), 5) is first  # another object, the same value: kept
    assert built(Card("Ada", ("vip",)), 5) == ("banner", Card("Ada", ("vip",)), 5)
    assert built(Card("Ada", ("vip",)), 6) == ("banner", Card("Ada", ("vip",)), 6)
    assert len(builds) == 3
    # Another ticket has its own entry; switched off, every call builds.
    rendered.built((1, "other"), (card, 5), lambda: builds.append(()))
    rendered.enabled = False
    built(Card("Ada", ("vip",)), 6)
    assert len(builds) == 5


def test_a_kept_value_digests_as_its_value_not_as_its_identity() -> None:
    rendered = RenderedParts()
    card = Card("Ada", ("vip",))
    key = rendered.digest((1, card, ("a",)))
    assert key is not None
    assert rendered.digest((1, card, ("a",))) == key  # found by identity
    assert rendered.digest((1, Card("Ada", ("vip",)), ("a",))) == key  # an equal value
    assert rendered.digest((1, Card("Ada", ("vip", "new")), ("a",))) != key
    assert rendered.digest((1, card, ("b",))) != key
    assert rendered.digest((2, card, ("a",))) != key
