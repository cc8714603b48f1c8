"""One time budget per sidebar view: the banner and the cards the page loads with it (the
suggestions, the review, the orders) wait for the helpdesk until the same deadline.

Each of them is a request of its own, and each reads the ticket through the upstream cache.
With the helpdesk hanging and nothing cached, each used to wait its whole budget in turn, so
the view took several budgets. A view is named by the installation, the agent and the ticket;
the banner starts it (the page asks for the cards once the banner has answered), and its
deadline is kept for `budget + VIEW_WINDOW_SECONDS`, so the cards that come after the banner
get what is left of the same budget (perhaps nothing: they answer at once, with what the
cache has or "still trying"). A card with no banner before it starts the view itself. Each
banner request starts the view again: the page asks for the banner again when it was told
"still trying" (Retry-After), and that retry must wait for the helpdesk, not answer at once
from a budget spent seconds ago. Per process, like the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from plugin.sidebar.upstream import LockedTTLCache

# How long after a view's deadline its later requests still count as the same view.
VIEW_WINDOW_SECONDS = 5.0
MAX_VIEWS = 20_000


class ViewBudgets:
    """When each recent view started, so that its requests share one deadline."""

    def __init__(
        self, *, budget_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._budget = budget_seconds
        self._clock = clock
        self._started: LockedTTLCache[Hashable, float] = LockedTTLCache(
            maxsize=MAX_VIEWS, ttl=budget_seconds + VIEW_WINDOW_SECONDS
        )

    def start(self, view: Hashable) -> float:
        """Start the view (its banner, or the banner asked for again): now plus the budget."""
        now = self._clock()
        self._started[view] = now
        return now + self._budget

    def deadline(self, view: Hashable) -> float:
        """The view's deadline (time.monotonic): its first request's start plus the budget."""
        now = self._clock()
        started = self._started.get(view)
        if started is None:
            self._started[view] = started = now
        return started + self._budget


def view_key(installation_id: int, user_id: str | None, ticket_id: str) -> Hashable:
    """What names one agent's view of one ticket."""
    return (installation_id, user_id, ticket_id)
