"""The compiled rule books (`RuleBook`) this process keeps, by database and installation.

Each is checked against the database per use (`rulebook.rule_book`); a change made in this process
drops its installation's book at once (`forget`), whatever the timestamps say.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy.orm import Session

from plugin.domain.exceptions import ExceptionType
from plugin.domain.rule_evaluation import CompiledRules
from plugin.domain.rules import Rule as DomainRule

# How many installations' books (per database) one process keeps.
BOOK_CACHE_SIZE = 256


@dataclass(frozen=True)
class RuleBook:
    """An installation's catalog and current rules, checked and compiled; shared read-only.

    `broken` lists what could not be used, with why: a rule that no longer validates (a
    persona it names was deleted), a catalog entry that no longer parses.
    """

    fingerprint: tuple[object, ...]
    compiled: CompiledRules
    catalog: Mapping[str, ExceptionType]
    rules: Mapping[str, DomainRule]
    rule_ids: Mapping[str, int]
    broken: tuple[tuple[str, str], ...]
    # When (`time.monotonic`) the whole fingerprint last matched the database.
    checked_at: float = 0.0


_books: LRUCache[tuple[str, int], RuleBook] = LRUCache(maxsize=BOOK_CACHE_SIZE)
_books_lock = threading.Lock()


def cached(session: Session, installation_id: int) -> RuleBook | None:
    """This process's book for the installation, as last built; None when there is none."""
    with _books_lock:
        return _books.get(_book_key(session, installation_id))


def keep(session: Session, installation_id: int, book: RuleBook) -> None:
    """Keep a freshly built book for the next use."""
    with _books_lock:
        _books[_book_key(session, installation_id)] = book


def forget(session: Session, installation_id: int) -> None:
    """Drop this process's book after a change made here, whatever the timestamps say."""
    with _books_lock:
        _books.pop(_book_key(session, installation_id), None)


def _book_key(session: Session, installation_id: int) -> tuple[str, int]:
    """Books are per database too: tests and tools may open several in one process."""
    return (session.get_bind().engine.url.render_as_string(), installation_id)
