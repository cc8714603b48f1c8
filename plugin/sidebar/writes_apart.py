"""The writes a sidebar view makes that its answer need not wait for, run on a worker thread.

A view's own records (the tickets it was opened on, the rules' exposures) matter to reports,
not to the agent looking at the answer: each is written after the answer is made, in a session
of its own on the app's executor, so the view neither waits for its statements nor for their
commit. `wait` is for tests and shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from contextlib import AbstractContextManager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Sessions = Callable[[], AbstractContextManager[Session]]
Write = Callable[[Session], None]
# Starts a write's submission when its caller chooses (`after_response.later`: once the
# answer is made); `at_once` when it has no reason to wait.
Start = Callable[[Callable[[], None]], None]


def at_once(work: Callable[[], None]) -> None:
    work()


class WritesApart:
    """Runs writes on `executor`, each in a session of its own, and keeps track of them."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._writing: set[Future[None]] = set()

    def submit(
        self,
        sessions: Sessions,
        write: Write,
        *,
        what: str,
        failed: Callable[[], None] | None = None,
    ) -> None:
        """Run `write` in a session from `sessions` on a worker thread.

        A database error is logged with `what` (never the statement's values) and `failed`
        is called, so that its caller can try again on a later view.
        """
        future = self._executor.submit(_write_apart, sessions, write, what, failed)
        with self._lock:
            self._writing.add(future)
        future.add_done_callback(self._done)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the writes under way (tests, shutdown)."""
        with self._lock:
            writing = list(self._writing)
        wait(writing, timeout=timeout)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._writing.discard(future)


def _write_apart(
    sessions: Sessions, write: Write, what: str, failed: Callable[[], None] | None
) -> None:
    try:
        with sessions() as session:
            write(session)
    except SQLAlchemyError as error:
        # Bookkeeping: the view was shown; say why its record was not (the engine hides the
        # statement's values: they are customer data).
        log.warning("%s was not recorded: %s", what, error)
        if failed is not None:
            failed()
