"""The upstream cache: one fetch per key, fresh hits, stale answers when the helpdesk lags."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from plugin.clock import utcnow
from plugin.helpdesks.interface import HelpdeskError
from plugin.sidebar.upstream import (
    HOLD_BACK_AFTER,
    Codec,
    LockedTTLCache,
    UpstreamCache,
    UpstreamTimeout,
)
from tests.clock import FakeClock


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def cache(executor: ThreadPoolExecutor, clock: FakeClock) -> UpstreamCache:
    return UpstreamCache(executor=executor, keep_seconds=3600, clock=clock)


def soon() -> float:
    return time.monotonic() + 5


def test_a_miss_fetches_and_a_fresh_entry_is_a_hit(cache: UpstreamCache, clock: FakeClock) -> None:
    calls: list[str] = []

    def load() -> str:
        calls.append("x")
        return "value"

    first = cache.lookup("k", load, fresh_for=60)
    assert not first.from_cache
    assert first.result(soon()).value == "value"
    clock.now += 59
    second = cache.lookup("k", load, fresh_for=60)
    assert second.from_cache and second.result(soon()).value == "value"
    assert calls == ["x"]
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)


def test_an_expired_entry_is_fetched_again(cache: UpstreamCache, clock: FakeClock) -> None:
    values = iter(["old", "new"])
    cache.lookup("k", lambda: next(values), fresh_for=60).result(soon())
    clock.now += 61
    fetched = cache.lookup("k", lambda: next(values), fresh_for=60).result(soon())
    assert fetched.value == "new" and not fetched.is_stale


def test_freshness_is_decided_per_lookup(cache: UpstreamCache, clock: FakeClock) -> None:
    cache.lookup("k", lambda: 1, fresh_for=600).result(soon())
    clock.now += 120
    assert cache.lookup("k", lambda: 2, fresh_for=600).from_cache
    assert not cache.lookup("k", lambda: 2, fresh_for=60).from_cache


def test_refresh_skips_a_fresh_entry(cache: UpstreamCache) -> None:
    cache.lookup("k", lambda: "a", fresh_for=600).result(soon())
    refreshed = cache.lookup("k", lambda: "b", fresh_for=600, refresh=True)
    assert not refreshed.from_cache and refreshed.result(soon()).value == "b"


def test_concurrent_lookups_share_one_fetch(cache: UpstreamCache) -> None:
    release = threading.Event()
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        release.wait(5)
        return 7

    lookups = [cache.lookup("k", load, fresh_for=60) for _ in range(5)]
    release.set()
    assert [lookup.result(soon()).value for lookup in lookups] == [7] * 5
    assert len(calls) == 1
    assert (cache.stats.misses, cache.stats.joined) == (1, 4)


def test_a_retryable_failure_serves_the_last_answer_marked_stale(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    cache.lookup("k", lambda: "cached", fresh_for=60).result(soon())
    clock.now += 61

    def down() -> str:
        raise HelpdeskError("Zendesk answered GET /x with 503", retryable=True)

    fetched = cache.lookup("k", down, fresh_for=60).result(soon())
    assert fetched.value == "cached" and fetched.is_stale
    assert "503" in (fetched.stale_reason or "")
    assert cache.stats.stale_served == 1


def test_a_final_failure_is_not_hidden_by_the_cache(cache: UpstreamCache, clock: FakeClock) -> None:
    cache.lookup("k", lambda: "cached", fresh_for=60).result(soon())
    clock.now += 61

    def gone() -> str:
        raise HelpdeskError("credentials refused (401)", retryable=False)

    with pytest.raises(HelpdeskError, match="401"):
        cache.lookup("k", gone, fresh_for=60).result(soon())


def test_a_failure_with_nothing_cached_is_raised(cache: UpstreamCache) -> None:
    def down() -> str:
        raise HelpdeskError("down", retryable=True)

    with pytest.raises(HelpdeskError, match="down"):
        cache.lookup("k", down, fresh_for=60).result(soon())
    assert cache.stats.fetch_errors == 1
    # The failed fetch is not left in flight: the next lookup tries again.
    assert cache.lookup("k", lambda: "up", fresh_for=60).result(soon()).value == "up"


def test_a_slow_fetch_serves_stale_at_the_deadline_and_refreshes_in_the_background(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    cache.lookup("k", lambda: "old", fresh_for=60).result(soon())
    clock.now += 61
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "new"

    lookup = cache.lookup("k", slow, fresh_for=60)
    started = time.monotonic()
    fetched = lookup.result(time.monotonic() + 0.05)
    assert time.monotonic() - started < 2
    assert fetched.value == "old" and fetched.is_stale
    release.set()
    assert lookup.result(soon()).value == "new"
    assert cache.lookup("k", slow, fresh_for=60).from_cache


def test_a_slow_fetch_with_nothing_cached_times_out(cache: UpstreamCache) -> None:
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "late"

    with pytest.raises(UpstreamTimeout):
        cache.lookup("k", slow, fresh_for=60).result(time.monotonic() + 0.05)
    release.set()


class MemoryStore:
    """A shared store in memory: what other processes of the service fetched."""

    def __init__(self) -> None:
        self.rows: dict[Hashable, tuple[object, datetime]] = {}
        self.reads = 0

    def read(self, key: Hashable) -> tuple[object, datetime] | None:
        self.reads += 1
        return self.rows.get(key)

    def write(self, key: Hashable, payload: object, fetched_at: datetime) -> None:
        self.rows[key] = (payload, fetched_at)


def _decode(raw: object) -> str:
    assert isinstance(raw, dict)
    return str(raw["v"])


TEXT = Codec[str](encode=lambda value: {"v": value}, decode=_decode)


def _down() -> str:
    raise HelpdeskError("Zendesk answered GET /x with 503", retryable=True)


def test_a_failure_serves_what_another_process_fetched_marked_stale(
    executor: ThreadPoolExecutor, clock: FakeClock
) -> None:
    # Another worker fetched it half an hour ago; this one never did, and the helpdesk is down.
    store = MemoryStore()
    store.write("k", {"v": "theirs"}, utcnow() - timedelta(minutes=30))
    cache = UpstreamCache(executor=executor, keep_seconds=3600, clock=clock, shared=store)
    fetched = cache.lookup("k", _down, fresh_for=60, codec=TEXT).result(soon())
    assert fetched.value == "theirs" and fetched.is_stale
    assert cache.stats.stale_served == 1
    # Kept as this process's fallback, still stale: the next lookup tries the helpdesk again,
    # and when it fails the answer is served without reading the store.
    reads = store.reads
    again = cache.lookup("k", _down, fresh_for=60, codec=TEXT)
    assert not again.from_cache
    assert again.result(soon()).value == "theirs"
    assert store.reads == reads + 1  # the fetch's own look for a fresh answer, no more


def test_a_slow_fetch_serves_what_another_process_fetched_at_the_deadline(
    executor: ThreadPoolExecutor, clock: FakeClock
) -> None:
    store = MemoryStore()
    store.write("k", {"v": "theirs"}, utcnow() - timedelta(minutes=30))
    cache = UpstreamCache(executor=executor, keep_seconds=3600, clock=clock, shared=store)
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "new"

    fetched = cache.lookup("k", slow, fresh_for=60, codec=TEXT).result(time.monotonic() + 0.05)
    release.set()
    assert fetched.value == "theirs" and fetched.is_stale


def test_the_shared_fallback_is_no_older_than_kept_nor_hides_a_final_failure(
    executor: ThreadPoolExecutor, clock: FakeClock
) -> None:
    store = MemoryStore()
    cache = UpstreamCache(executor=executor, keep_seconds=3600, clock=clock, shared=store)
    store.write("old", {"v": "too old"}, utcnow() - timedelta(hours=2))
    with pytest.raises(HelpdeskError, match="503"):
        cache.lookup("old", _down, fresh_for=60, codec=TEXT).result(soon())
    store.write("gone", {"v": "theirs"}, utcnow() - timedelta(minutes=5))

    def refused() -> str:
        raise HelpdeskError("credentials refused (401)", retryable=False)

    with pytest.raises(HelpdeskError, match="401"):
        cache.lookup("gone", refused, fresh_for=60, codec=TEXT).result(soon())


def _cache_with_old(cache: UpstreamCache, clock: FakeClock, *keys: str) -> None:
    """Cache an answer for each key in group "helpdesk", then let them go past their TTL."""
    for key in keys:
        cache.lookup(key, lambda: "cached", fresh_for=60, group="helpdesk").result(soon())
    clock.now += 61


def test_after_a_failure_a_stale_answer_is_served_without_waiting_on_the_helpdesk(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    _cache_with_old(cache, clock, "a", "b")
    # One read fails: the helpdesk is in trouble.
    assert cache.lookup("a", _down, fresh_for=60, group="helpdesk").result(soon()).is_stale
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "new"

    started = time.monotonic()
    fetched = cache.lookup("b", slow, fresh_for=60, group="helpdesk").result(soon())
    assert time.monotonic() - started < 1  # not the 5 s budget
    assert fetched.value == "cached" and fetched.is_stale
    # One failure holds no read back: the fetch went on; once it answers, the trouble is over.
    assert cache.stats.held_back == 0
    release.set()
    deadline = soon()
    while cache.in_trouble("helpdesk") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cache.in_trouble("helpdesk")
    assert cache.lookup("b", slow, fresh_for=60, group="helpdesk").result(soon()).value == "new"


def test_a_spent_budget_puts_the_helpdesk_in_trouble_for_a_while(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    _cache_with_old(cache, clock, "a")
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "late"

    lookup = cache.lookup("a", slow, fresh_for=60, group="helpdesk")
    assert lookup.result(time.monotonic() + 0.05).is_stale
    assert cache.in_trouble("helpdesk") and not cache.in_trouble("shop")
    clock.now += 10  # DEFAULT_TROUBLE_SECONDS
    assert not cache.in_trouble("helpdesk")
    release.set()


def test_in_trouble_a_caller_with_nothing_cached_still_waits_its_budget(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    cache.mark_trouble("helpdesk")

    def slowish() -> str:
        time.sleep(0.1)
        return "answer"

    assert cache.lookup("new", slowish, fresh_for=60, group="helpdesk").result(soon()).value == (
        "answer"
    )


def test_in_trouble_one_fetch_at_a_time_goes_to_the_helpdesk(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    _cache_with_old(cache, clock, "seen")
    for _ in range(HOLD_BACK_AFTER):
        cache.mark_trouble("helpdesk")
    release = threading.Event()
    calls: list[str] = []

    def hanging(name: str) -> Callable[[], str]:
        def load() -> str:
            calls.append(name)
            release.wait(5)
            return name

        return load

    # The probe: the first read in trouble starts a fetch (and serves nothing cached: it waits).
    probe = cache.lookup("probe", hanging("probe"), fresh_for=60, group="helpdesk")
    # While it is out, other reads start none: stale if cached, else "not answering", at once.
    started = time.monotonic()
    stale = cache.lookup("seen", hanging("seen"), fresh_for=60, group="helpdesk").result(soon())
    assert stale.value == "cached" and stale.is_stale
    with pytest.raises(UpstreamTimeout):
        cache.lookup("never", hanging("never"), fresh_for=60, group="helpdesk").result(soon())
    assert time.monotonic() - started < 1
    assert cache.stats.held_back == 2
    # Another upstream is not held back by this one's trouble.
    assert cache.lookup("s", lambda: "shop", fresh_for=60, group="shop").result(soon()).value == (
        "shop"
    )
    # The probe answers: out of trouble, and reads fetch again.
    release.set()
    assert probe.result(soon()).value == "probe"
    assert cache.lookup("never", lambda: "now", fresh_for=60, group="helpdesk").result(
        soon()
    ).value == ("now")
    assert calls == ["probe"]


def test_a_single_failure_holds_back_no_read_of_a_customer_never_seen(
    cache: UpstreamCache, clock: FakeClock
) -> None:
    with pytest.raises(HelpdeskError):
        cache.lookup("a", _down, fresh_for=60, group="helpdesk").result(soon())
    assert cache.in_trouble("helpdesk")
    # A blip, not an outage: the next read, right after, still goes to the helpdesk.
    fetched = cache.lookup("b", lambda: "answer", fresh_for=60, group="helpdesk").result(soon())
    assert fetched.value == "answer" and cache.stats.held_back == 0
    assert not cache.in_trouble("helpdesk")


def test_an_answer_another_process_fetched_after_the_failures_ends_the_trouble(
    executor: ThreadPoolExecutor, clock: FakeClock
) -> None:
    store = MemoryStore()
    cache = UpstreamCache(executor=executor, keep_seconds=3600, clock=clock, shared=store)
    for _ in range(HOLD_BACK_AFTER):
        cache.mark_trouble("helpdesk")
    # The helpdesk is back: another process fetched this a moment after the failures here.
    store.write("k", {"v": "theirs"}, utcnow() + timedelta(seconds=1))
    clock.now += 1  # DEFAULT_PROBE_SECONDS: this read may start a fetch, the shared store answers
    # In trouble, the answer is shown at once (stale); the fetch finds the shared one fresh.
    fetched = cache.lookup("k", _down, fresh_for=60, codec=TEXT, group="helpdesk").result(soon())
    assert fetched.value == "theirs"
    deadline = soon()
    while cache.in_trouble("helpdesk") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cache.in_trouble("helpdesk") and cache.stats.shared_hits == 1
    # So the next customer, never seen, is read from the helpdesk rather than held back.
    other = cache.lookup("new", lambda: "fresh", fresh_for=60, group="helpdesk").result(soon())
    assert other.value == "fresh"


def test_an_answer_in_the_shared_store_is_read_on_the_callers_thread(
    clock: FakeClock,
) -> None:
    """A helpdesk event's refresh stored the answer: the lookup is answered at once, from the
    caller's thread (no fetch, no thread to wait for); a miss there still fetches."""
    store = MemoryStore()

    class NoThreads(ThreadPoolExecutor):
        submitted = 0

        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            NoThreads.submitted += 1
            return super().submit(fn, *args, **kwargs)

    with NoThreads(max_workers=2) as executor:
        cache = UpstreamCache(executor=executor, keep_seconds=3600, clock=clock, shared=store)
        store.write("k", {"v": "stored"}, utcnow())
        found = cache.lookup("k", _down, fresh_for=60, codec=TEXT, group="helpdesk")
        assert found.from_cache and found.result(soon()).value == "stored"
        assert NoThreads.submitted == 0 and cache.stats.shared_hits == 1
        # Kept here: the next lookup is a hit without reading the store.
        assert cache.lookup("k", _down, fresh_for=60, codec=TEXT).from_cache
        assert cache.stats.hits == 1
        # Not in the store: fetched on a thread, as before.
        missing = cache.lookup("other", lambda: "fetched", fresh_for=60, codec=TEXT)
        assert not missing.from_cache and missing.result(soon()).value == "fetched"
        assert NoThreads.submitted >= 1


def test_trouble_is_kept_per_group(cache: UpstreamCache, clock: FakeClock) -> None:
    cache.lookup("shop-key", lambda: "cached", fresh_for=60, group="shop").result(soon())
    clock.now += 61
    cache.mark_trouble("helpdesk")

    def slowish() -> str:
        time.sleep(0.1)
        return "fresh"

    fetched = cache.lookup("shop-key", slowish, fresh_for=60, group="shop").result(soon())
    assert fetched.value == "fresh" and not fetched.is_stale


def test_entries_are_kept_only_as_long_as_allowed(
    executor: ThreadPoolExecutor, clock: FakeClock
) -> None:
    cache = UpstreamCache(executor=executor, keep_seconds=100, clock=clock)
    cache.lookup("k", lambda: 1, fresh_for=10).result(soon())
    clock.now += 101
    assert len(cache) == 0


def test_invalidate_forgets_an_entry(cache: UpstreamCache) -> None:
    cache.lookup("k", lambda: 1, fresh_for=600).result(soon())
    cache.invalidate("k")
    assert not cache.lookup("k", lambda: 2, fresh_for=600).from_cache


def test_the_locked_cache_is_a_mapping_threads_can_share() -> None:
    shared: LockedTTLCache[int, int] = LockedTTLCache(maxsize=100, ttl=60)

    def writer(start: int) -> None:
        for n in range(start, start + 500):
            shared[n % 150] = n
            shared.get((n + 7) % 150)

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(shared) == 100 and len(list(shared)) == 100
    key = next(iter(shared))
    del shared[key]
    assert key not in shared
