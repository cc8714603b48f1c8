"""Helpdesk answers fetched in parallel, kept for a while, and served stale when the helpdesk lags.

The sidebar has a time budget. Each upstream read is looked up here: a fresh cached answer is
used at once; otherwise a fetch starts on a worker thread (one per key, however many requests
want it) and the caller waits for it until its deadline. If the fetch fails or the deadline
passes, the last answer the cache held is served and marked stale; the fetch keeps running and
refreshes the cache for the next view. Only when nothing was ever cached does the caller get
the error.

Each process has its own cache, so with several processes (gunicorn workers, hosts) each
would fetch the same answer again. A read given a `Codec` is also kept in a `SharedStore` (the
database's shared cache, see `plugin/sidebar/shared_cache.py`): a process that misses looks there
before asking the helpdesk, and stores what it fetched for the others. When the helpdesk fails
and this process never held the answer, the shared store's last one, however old (up to
`keep_seconds`), is served stale: an answer another process fetched is as good a fallback as
one of its own.

Reads name the upstream they go to (`group`: an installation's helpdesk, its shop). Once a
read of a group has failed, or kept a caller waiting its whole budget, the group is in
trouble until one of its fetches succeeds (or `trouble_seconds` pass): a caller that has a
stale answer to show gets it at once instead of waiting on the helpdesk again. Without this,
a hanging helpdesk holds every such request for the whole budget, and under load the
request threads run out long before the budget does. And once a group has failed
`HOLD_BACK_AFTER` times in a row, one fetch at a time goes to it, at most one a
`probe_seconds` (the probe): a read that would start another is answered with what the cache
has, stale, or if nothing with "the helpdesk is not answering" at once, so a down helpdesk is
not sent a call per view while it is down. A fetch that succeeds, here or (seen through the
shared store) in another process after the failures, ends the trouble.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar, cast

from cachetools import TTLCache

from plugin.clock import utcnow
from plugin.helpdesks.interface import HelpdeskError
from plugin.observability import count_cache_lookup

T = TypeVar("T")

DEFAULT_MAX_ENTRIES = 20_000
# How long a failure or a spent budget marks a group in trouble, unless a fetch succeeds first.
DEFAULT_TROUBLE_SECONDS = 10.0
# In trouble, the least time between two fetches started to the group (per process).
DEFAULT_PROBE_SECONDS = 1.0
# Failures in a row (or spent budgets) before reads are held back to one probe at a time: one
# failed call among many is a blip, not a helpdesk that is down.
HOLD_BACK_AFTER = 3


@dataclass(frozen=True)
class UpstreamPolicy:
    """How long the sidebar waits for the helpdesk and how long its answers stay fresh."""

    budget_seconds: float = 2.5
    ticket_fresh_seconds: float = 120.0
    history_fresh_seconds: float = 600.0
    shop_fresh_seconds: float = 900.0


def upstream_group(installation_id: int, upstream: str) -> tuple[int, str]:
    """What the cache keeps trouble for: one installation's helpdesk, or its shop."""
    return (installation_id, upstream)


class UpstreamTimeout(HelpdeskError):
    """The helpdesk did not answer within the caller's time budget, and nothing was cached."""

    def __init__(self) -> None:
        super().__init__("the helpdesk did not answer within the time budget", retryable=True)


@dataclass(frozen=True)
class Fetched(Generic[T]):
    """An upstream answer, when it was fetched, and why it is stale if it is."""

    value: T
    fetched_at: datetime
    stale_reason: str | None = None

    @property
    def is_stale(self) -> bool:
        return self.stale_reason is not None


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How an answer is stored in the shared store: as JSON-ready data, and back."""

    encode: Callable[[T], object]
    decode: Callable[[object], T]


class SharedStore(Protocol):
    """Answers kept where every process of the service can read them (by cache key)."""

    def read(self, key: Hashable) -> tuple[object, datetime] | None:
        """The stored JSON-ready answer and when it was fetched, or None (also on failure)."""
        ...

    def write(self, key: Hashable, payload: object, fetched_at: datetime) -> None:
        """Store an answer (a failure is logged, never raised: the store is an optimisation)."""
        ...


@dataclass(frozen=True)
class _Entry:
    value: object
    fetched_at: datetime
    loaded_monotonic: float


@dataclass
class CacheStats:
    """Counters for metrics and benchmarks: how lookups were answered."""

    hits: int = 0
    misses: int = 0
    joined: int = 0
    stale_served: int = 0
    fetch_errors: int = 0
    # Misses answered by the shared store, fresh enough: no call to the helpdesk.
    shared_hits: int = 0
    # Reads that started no fetch: their group was in trouble with its probe out.
    held_back: int = 0


class Lookup(Generic[T]):
    """One read: answered from the cache, or a fetch in flight plus what the cache had before."""

    def __init__(
        self,
        *,
        cache: UpstreamCache,
        entry: _Entry | None,
        future: Future[tuple[T, datetime]] | None,
        key: Hashable = None,
        codec: Codec[T] | None = None,
        group: Hashable = None,
        held_back: bool = False,
    ) -> None:
        self._cache = cache
        self._entry = entry
        self._future = future
        # No fetch was started: the group is in trouble and its probe is out.
        self._held_back = held_back
        self._key = key
        self._codec = codec
        self._group = group

    @property
    def from_cache(self) -> bool:
        return self._future is None and not self._held_back

    def result(self, deadline: float) -> Fetched[T]:
        """Wait until the monotonic `deadline` at most; fall back to the cached answer."""
        entry = self._entry
        if self._held_back:
            entry = entry or self._from_shared()
            if entry is None:
                raise UpstreamTimeout()
            return self._stale(entry, "the helpdesk is not answering")
        if self._future is None:
            assert entry is not None
            return Fetched(value=entry.value, fetched_at=entry.fetched_at)  # type: ignore[arg-type]
        waiting_until = deadline
        if self._cache.in_trouble(self._group):
            # The upstream has just failed or made someone wait their whole budget: with a
            # stale answer to show, show it now; the fetch goes on for the next caller.
            entry = entry or self._from_shared()
            if entry is not None:
                waiting_until = time.monotonic()
        try:
            value, fetched_at = self._future.result(
                timeout=max(0.0, waiting_until - time.monotonic())
            )
        except FutureTimeout:
            if waiting_until == deadline:
                self._cache.mark_trouble(self._group)
            entry = entry or self._from_shared()
            if entry is None:
                raise UpstreamTimeout() from None
            return self._stale(entry, "the helpdesk is slow to answer")
        except HelpdeskError as error:
            if not error.retryable:
                raise
            entry = entry or self._from_shared()
            if entry is None:
                raise
            return self._stale(entry, str(error))
        return Fetched(value=value, fetched_at=fetched_at)

    def _from_shared(self) -> _Entry | None:
        """The shared store's last answer, when this process had none to fall back on."""
        if self._codec is None:
            return None
        return self._cache.last_shared(self._key, cast(Codec[object], self._codec))

    def _stale(self, entry: _Entry, reason: str) -> Fetched[T]:
        self._cache.count_stale()
        return Fetched(value=entry.value, fetched_at=entry.fetched_at, stale_reason=reason)  # type: ignore[arg-type]


class UpstreamCache:
    """A thread-safe cache of upstream answers with per-read freshness and one fetch per key.

    Entries live at most `keep_seconds` (how stale an answer may ever be served); whether an
    entry is still fresh is decided per lookup, so each kind of read has its own TTL.
    """

    def __init__(
        self,
        *,
        executor: Executor,
        keep_seconds: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedStore | None = None,
        trouble_seconds: float = DEFAULT_TROUBLE_SECONDS,
        probe_seconds: float = DEFAULT_PROBE_SECONDS,
    ) -> None:
        self._executor = executor
        self._shared = shared
        self._clock = clock
        self._keep_seconds = keep_seconds
        self._trouble_seconds = trouble_seconds
        self._probe_seconds = probe_seconds
        # When each group's latest fetch started (self._clock), to space the probes.
        self._last_fetch: dict[Hashable, float] = {}
        # Groups in trouble: when their last failure or spent budget was (self._clock).
        self._trouble: dict[Hashable, float] = {}
        # Per group in trouble: failures in a row, and when the latest was (wall clock, to
        # compare with the fetch time of an answer another process stored).
        self._failures: dict[Hashable, int] = {}
        self._failed_at: dict[Hashable, datetime] = {}
        self._lock = threading.Lock()
        self._entries: TTLCache[Hashable, _Entry] = TTLCache(
            maxsize=max_entries, ttl=keep_seconds, timer=clock
        )
        self._inflight: dict[Hashable, Future[tuple[object, datetime]]] = {}
        # Fetches in flight per group, so that a group in trouble gets one at a time.
        self._group_inflight: Counter[Hashable] = Counter()
        self.stats = CacheStats()

    def lookup(
        self,
        key: Hashable,
        load: Callable[[], T],
        *,
        fresh_for: float,
        refresh: bool = False,
        codec: Codec[T] | None = None,
        group: Hashable = None,
    ) -> Lookup[T]:
        """Answer from the cache if the entry is younger than `fresh_for`, else start a fetch.

        `refresh` skips a fresh entry (the caller knows it is out of date) but keeps it as the
        fallback should the fetch fail. With a `codec` the fetch first looks in the shared
        store for an answer younger than `fresh_for`, and stores what it fetched there.
        `group` names the upstream the read goes to (None: no trouble is kept for it).
        """
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is not None
                and not refresh
                and self._clock() - entry.loaded_monotonic < fresh_for
            ):
                self.stats.hits += 1
                count_cache_lookup("hit")
                return Lookup(cache=self, entry=entry, future=None)
            future = self._inflight.get(key)
            if future is None and self._held_back(group):
                self.stats.held_back += 1
                count_cache_lookup("held_back")
                return Lookup(
                    cache=self, entry=entry, future=None, key=key, codec=codec, held_back=True
                )
        shared = (
            (cast(Codec[object], codec), fresh_for) if codec is not None and not refresh else None
        )
        if future is None and shared is not None and self._shared is not None:
            # The answer another process (or a helpdesk event's refresh) stored, read on this
            # thread: one indexed query, which handed to a thread and waited for cost a first
            # view more than it took (0.4 ms of an event's ticket's first view on SQLite).
            stored = self._from_shared(key, *shared)
            if stored is not None:
                return Lookup(cache=self, entry=self._keep_shared(key, *stored, group), future=None)
        with self._lock:
            future = self._inflight.get(key)
            if future is None:
                self.stats.misses += 1
                count_cache_lookup("miss")
                future = self._executor.submit(self._load, key, load, shared, group)
                self._inflight[key] = future
                if group is not None:
                    self._group_inflight[group] += 1
                    self._last_fetch[group] = self._clock()
            else:
                self.stats.joined += 1
                count_cache_lookup("joined")
        return Lookup(
            cache=self,
            entry=entry,
            future=future,  # type: ignore[arg-type]
            key=key,
            codec=codec,
            group=group,
        )

    def _keep_shared(
        self, key: Hashable, value: object, fetched_at: datetime, group: Hashable
    ) -> _Entry:
        """Keep an answer read from the shared store as this process's own."""
        # An answer from the shared store is as old as its fetch, not as its arrival here.
        age = max(0.0, (utcnow() - fetched_at).total_seconds())
        entry = _Entry(value=value, fetched_at=fetched_at, loaded_monotonic=self._clock() - age)
        with self._lock:
            self._entries[key] = entry
            self.stats.misses += 1
            self.stats.shared_hits += 1
            failed_at = self._failed_at.get(group)
            if group is not None and failed_at and fetched_at > failed_at:
                # Another process's answer came after the failures: the upstream answers.
                self._end_trouble(group)
        count_cache_lookup("miss")
        count_cache_lookup("shared_hit")
        return entry

    def invalidate(self, key: Hashable) -> None:
        """Forget an entry, e.g. after Regulars itself changed the thing upstream."""
        with self._lock:
            self._entries.pop(key, None)

    def newer_shared(self, key: Hashable, codec: Codec[T], *, than: datetime) -> Fetched[T] | None:
        """The shared store's answer for `key` when it was fetched after `than` (another
        process, or a helpdesk event's refresh, stored it since), kept here; else None."""
        if self._shared is None:
            return None
        found = self._shared.read(key)
        if found is None or found[1] <= than:
            return None
        payload, fetched_at = found
        try:
            value = codec.decode(payload)
        except (KeyError, TypeError, ValueError):
            return None
        age = max(0.0, (utcnow() - fetched_at).total_seconds())
        with self._lock:
            self._entries[key] = _Entry(
                value=value, fetched_at=fetched_at, loaded_monotonic=self._clock() - age
            )
        return Fetched(value=value, fetched_at=fetched_at)

    def drop_installation(self, installation_id: int) -> int:
        """Forget every entry of one installation (keys begin with its id), e.g. after one of
        its customers was forgotten; returns how many. Fetches in flight still land."""
        with self._lock:
            doomed = [
                key
                for key in list(self._entries)
                if isinstance(key, tuple) and key and key[0] == installation_id
            ]
            for key in doomed:
                self._entries.pop(key, None)
        return len(doomed)

    def in_trouble(self, group: Hashable) -> bool:
        """Has this upstream failed, or spent someone's budget, lately and not answered since?"""
        with self._lock:
            return self._troubled(group)

    def _held_back(self, group: Hashable) -> bool:
        # Under self._lock: in trouble, with a probe out or one started too lately.
        if not self._troubled(group):
            return False
        last = self._last_fetch.get(group)
        recent = last is not None and self._clock() - last < self._probe_seconds
        in_a_row = self._failures.get(group, 0) >= HOLD_BACK_AFTER
        return in_a_row and (bool(self._group_inflight[group]) or recent)

    def _troubled(self, group: Hashable) -> bool:
        # Under self._lock.
        if group is None:
            return False
        since = self._trouble.get(group)
        if since is not None and self._clock() - since >= self._trouble_seconds:
            self._end_trouble(group)
            since = None
        return since is not None

    def mark_trouble(self, group: Hashable) -> None:
        if group is not None:
            with self._lock:
                self._trouble[group] = self._clock()
                self._failures[group] = self._failures.get(group, 0) + 1
                self._failed_at[group] = utcnow()

    def _end_trouble(self, group: Hashable) -> None:
        # Under self._lock.
        self._trouble.pop(group, None)
        self._failures.pop(group, None)
        self._failed_at.pop(group, None)

    def count_stale(self) -> None:
        with self._lock:
            self.stats.stale_served += 1
        count_cache_lookup("stale")

    def _load(
        self,
        key: Hashable,
        load: Callable[[], object],
        shared: tuple[Codec[object], float] | None = None,
        group: Hashable = None,
    ) -> tuple[object, datetime]:
        # Runs on a worker thread. The lock is taken after `lookup` released it, so the future
        # is always registered before it is removed here. `shared`: the codec and freshness
        # of the shared store, which `lookup` has read already, to store the answer in.
        try:
            try:
                value = load()
            except HelpdeskError as error:
                if error.retryable:
                    self.mark_trouble(group)
                raise
            fetched_at = utcnow()
            if shared and self._shared is not None:
                # On another thread: the caller waiting for this answer need not wait for it.
                self._executor.submit(self._shared.write, key, shared[0].encode(value), fetched_at)
        except BaseException:
            with self._lock:
                self._inflight.pop(key, None)
                self._group_done(group)
                self.stats.fetch_errors += 1
            raise
        with self._lock:
            self._entries[key] = _Entry(
                value=value, fetched_at=fetched_at, loaded_monotonic=self._clock()
            )
            self._inflight.pop(key, None)
            self._group_done(group)
            if group is not None:
                self._end_trouble(group)  # the upstream answered
        return value, fetched_at

    def _group_done(self, group: Hashable) -> None:
        # Under self._lock: one of the group's fetches is over.
        if group is not None:
            self._group_inflight[group] -= 1
            if self._group_inflight[group] <= 0:
                del self._group_inflight[group]

    def last_shared(self, key: Hashable, codec: Codec[object]) -> _Entry | None:
        """The shared store's answer for `key` at any age within `keep_seconds`, to serve stale
        when the helpdesk fails and this process holds nothing; kept here as the fallback of
        the next lookups (and refreshed by their fetches). None if there is none."""
        if self._shared is None:
            return None
        found = self._shared.read(key)
        if found is None:
            return None
        payload, fetched_at = found
        age = max(0.0, (utcnow() - fetched_at).total_seconds())
        if age >= self._keep_seconds:
            return None
        try:
            value = codec.decode(payload)
        except (KeyError, TypeError, ValueError):
            return None  # stored by another version of the service
        entry = _Entry(value=value, fetched_at=fetched_at, loaded_monotonic=self._clock() - age)
        with self._lock:
            # A fetch that succeeded meanwhile has stored something newer: keep it.
            return self._entries.setdefault(key, entry)

    def _from_shared(
        self, key: Hashable, codec: Codec[object], fresh_for: float
    ) -> tuple[object, datetime] | None:
        """A fresh enough answer another process stored, decoded; None if there is none."""
        if self._shared is None:
            return None
        found = self._shared.read(key)
        if found is None:
            return None
        payload, fetched_at = found
        if (utcnow() - fetched_at).total_seconds() >= fresh_for:
            return None
        try:
            return codec.decode(payload), fetched_at
        except (KeyError, TypeError, ValueError):
            return None  # stored by another version of the service: fetch it again

    def clear(self) -> None:
        """Forget every entry (benchmarks measuring cold views, tests)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LockedTTLCache(MutableMapping[K, V]):
    """A cachetools TTLCache that threads may share (cachetools' own caches are not safe)."""

    def __init__(self, *, maxsize: int, ttl: float) -> None:
        self._cache: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()

    def __getitem__(self, key: K) -> V:
        with self._lock:
            return self._cache[key]

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._cache[key] = value

    def __delitem__(self, key: K) -> None:
        with self._lock:
            del self._cache[key]

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._cache))

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)
