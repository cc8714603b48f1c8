"""One time budget per view: the banner and its cards wait until the same deadline."""

from __future__ import annotations

import time
from pathlib import Path

from plugin.sidebar.view_budget import VIEW_WINDOW_SECONDS, ViewBudgets, view_key
from tests.e2e.test_zendesk_end_to_end import HIGH_VALUE_REQUESTER, HIGH_VALUE_TICKET, make_world


def test_a_views_requests_share_the_first_ones_deadline() -> None:
    now = [100.0]
    budgets = ViewBudgets(budget_seconds=2.5, clock=lambda: now[0])
    view = view_key(1, "80001", "1058")
    assert budgets.deadline(view) == 102.5
    now[0] = 101.0
    assert budgets.deadline(view) == 102.5  # a card after the banner: what is left
    assert budgets.deadline(view_key(1, "80002", "1058")) == 103.5  # another agent's view
    assert budgets.deadline(view_key(2, "80001", "1058")) == 103.5  # another installation's


def test_within_the_window_a_view_keeps_its_deadline_once_it_has_passed() -> None:
    budgets = ViewBudgets(budget_seconds=0.05)
    view = view_key(1, "80001", "1058")
    first = budgets.deadline(view)
    time.sleep(0.1)  # past the deadline, well within the window
    assert VIEW_WINDOW_SECONDS > 0.1
    assert budgets.deadline(view) == first


def test_the_banner_asked_for_again_gets_a_budget_of_its_own() -> None:
    """The page asks again after "still trying" (Retry-After 2 s): that request waits for the
    helpdesk again instead of answering at once from the budget it spent before."""
    now = [100.0]
    budgets = ViewBudgets(budget_seconds=2.5, clock=lambda: now[0])
    view = view_key(1, "80001", "1058")
    assert budgets.start(view) == 102.5
    now[0] = 104.5  # the retry, well within the view's window
    assert budgets.deadline(view) == 102.5  # a card now would have nothing left
    assert budgets.start(view) == 107.0
    now[0] = 105.0
    assert budgets.deadline(view) == 107.0  # the cards after it share the new budget


def test_with_the_helpdesk_hanging_the_cards_do_not_wait_a_budget_each(tmp_path: Path) -> None:
    for world in make_world(tmp_path, upstream_budget_ms=600, upstream_timeout_seconds=5):
        world.zendesk.hang_seconds = 3.0
        world.zendesk.mode = "hang"
        token = world.session_token()
        started = time.monotonic()
        banner = world.banner(token, HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER)
        assert banner.status_code == 503
        for card in ("/sidebar/suggestions", "/sidebar/review"):
            answer = world.client.get(
                card,
                query_string={"ticket_id": HIGH_VALUE_TICKET, "requester_id": HIGH_VALUE_REQUESTER},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 503, answer.get_data(as_text=True)
        # One budget for the whole view (0.6 s), not one per request (1.8 s).
        assert time.monotonic() - started < 1.2
