"""Work a request asks for that its answer does not wait on: run once the answer is made.

A view's bookkeeping (its seen-ticket write, `plugin.sidebar.seen`) runs on a writer thread;
started in the middle of the view, it competed for the interpreter and SQLite's write lock with
the cards still being rendered (a tenth of an event's first view). Handed to `later`, it starts
when the request is torn down: the answer is made (and timed), the server is sending it.
An answer that fails still runs what was asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, g, has_request_context

log = logging.getLogger(__name__)

_KEY = "regulars_after_response"


def later(work: Callable[[], None]) -> None:
    """Run `work` when this request's answer is made; at once outside a request."""
    if not has_request_context():
        work()
        return
    waiting: list[Callable[[], None]] | None = g.get(_KEY)
    if waiting is None:
        waiting = []
        setattr(g, _KEY, waiting)
    waiting.append(work)


def _run(_error: BaseException | None) -> None:
    for work in g.pop(_KEY, ()):
        try:
            work()
        except Exception:  # one piece of bookkeeping must not stop the others
            log.exception("work left for after the answer failed")


def init_app(app: Flask) -> None:
    app.teardown_request(_run)
