"""The upstream cache: one fetch per key, fresh hits, stale answers when the helpdesk lags."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from plugin.platforms.base import HelpdeskError
from plugin.upstream import LockedTTLCache, UpstreamCache, UpstreamTimeout


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
