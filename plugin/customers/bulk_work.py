"""Bulk work in a command: worker processes for pure-Python work, fed in order, and Python's
cyclic garbage collector kept out of the way. Imports and recomputes use them alike."""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Allocations between collections of the youngest generation during bulk work (default 700).
BULK_GC_THRESHOLD = 200_000


@contextmanager
def few_collections() -> Iterator[None]:
    """Run bulk work with Python's cyclic garbage collector run rarely (in a command only).

    An import or recompute allocates millions of short-lived objects (rows, records,
    histories), none in cycles, which reference counting frees; the collector, run every 700
    allocations by default, kept scanning them anyway (a 20,000-customer import: about a
    third faster without). Not in a threaded server, where the setting, global to the
    process, could not be given back reliably.
    """
    if threading.active_count() > 1:
        yield
        return
    threshold = gc.get_threshold()
    gc.freeze()  # what exists now (the modules, the app) is not scanned again
    gc.set_threshold(max(threshold[0], BULK_GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@contextmanager
def worker_pool(wanted: bool = True) -> Iterator[Executor | None]:
    """Worker processes, one per CPU, for pure-Python work; None if unwanted or unsafe.

    Forked, so they start at once with everything already imported, and only when this
    process runs a single thread (a command, not a threaded server), which forking needs to
    be safe. The workers only run pure functions: they never touch the database connections
    they inherit.
    """
    workers = os.cpu_count() or 1
    if (
        not wanted
        or workers < 2
        or threading.active_count() > 1
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        yield None
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield pool


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def in_order(pool: Executor, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """`map` in a pool, in order, a few tasks per worker queued: memory stays bounded."""
    in_flight = 3 * (os.cpu_count() or 1)
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
