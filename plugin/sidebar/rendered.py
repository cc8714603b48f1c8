"""The sidebar's banner and cards built and rendered, kept per process, keyed by the whole of
what they are made from.

A warm view's data comes from caches in a few microseconds, and rendering the banner's
template then cost about a third of the view's CPU (issue 19). Most views of a ticket render
the very same HTML, so the HTML is kept, keyed by a digest of the template's inputs *as values*
(pickled: any change of any field is another key, never a wrong hit) plus the words every
time-dependent expression gives now ("3 days ago", "since May 2014 · 11 years"): relative
times are part of the key, not frozen in the entry. Each part's inputs start with its
template's name, so two parts never share an entry.

A warm view also reads the very objects the view before it read (the upstream cache's
requester and tickets, the read cache's stored facts), so the banner built from them is kept
by those sources (`built`), and a value's digest by the value itself: a warm view neither
builds its banner nor pickles it. Nothing here knows Flask.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from collections.abc import Callable, Hashable
from dataclasses import is_dataclass
from typing import TypeVar

from cachetools import LRUCache

log = logging.getLogger(__name__)

# A few thousand parts (a banner is about 3 KB): the tickets a worker's agents have open.
DEFAULT_ENTRIES = 2048

T = TypeVar("T")


class RenderedParts:
    """LRUs of rendered HTML by input digest and of built banners by their sources;
    `enabled=False` builds and renders every time."""

    def __init__(self, *, entries: int = DEFAULT_ENTRIES, enabled: bool = True) -> None:
        self.enabled = enabled
        self._html: LRUCache[bytes, str] = LRUCache(maxsize=entries)
        self._built: LRUCache[Hashable, tuple[tuple[object, ...], object]] = LRUCache(entries)
        # A value's digest by its id; the entry holds the value, so the id is not reused.
        self._digests: LRUCache[int, tuple[object, bytes]] = LRUCache(maxsize=entries)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def built(self, key: Hashable, sources: tuple[object, ...], build: Callable[[], T]) -> T:
        """What `build()` gives, built again only when its sources changed since `key`'s last.

        `sources` must hold everything `build` reads. Each is compared first by identity
        (a cached object read again), then by value, so equal sources never build twice and
        changed ones always do; what `build` returns must not be changed afterwards.
        """
        if not self.enabled:
            return build()
        with self._lock:
            entry = self._built.get(key)
        if entry is not None and _same(entry[0], sources):
            return entry[1]  # type: ignore[return-value]
        value = build()
        with self._lock:
            self._built[key] = (sources, value)
        return value

    def render(self, inputs: tuple[object, ...], render: Callable[[], str]) -> str:
        """The HTML `render()` gives for these inputs, rendered once per distinct inputs.

        `inputs` must hold the template's name and everything its output depends on, as
        values; inputs that cannot be pickled (a new kind of object) are rendered uncached.
        """
        if not self.enabled:
            return render()
        key = self.digest(inputs)
        if key is None:
            return render()
        with self._lock:
            html = self._html.get(key)
            if html is not None:
                self.hits += 1
                return html
            self.misses += 1
        html = render()
        with self._lock:
            self._html[key] = html
        return html

    def digest(self, inputs: tuple[object, ...]) -> bytes | None:
        """`digest(inputs)`, with each dataclass among them digested once per object."""
        parts: list[object] = []
        for value in inputs:
            if not is_dataclass(value):
                parts.append(value)
                continue
            with self._lock:
                known = self._digests.get(id(value))
            if known is not None and known[0] is value:
                parts.append(known[1])
                continue
            made = digest((type(value).__qualname__, value))
            if made is None:
                return None
            with self._lock:
                self._digests[id(value)] = (value, made)
            parts.append(made)
        return digest(tuple(parts))

    def clear(self) -> None:
        with self._lock:
            self._html.clear()
            self._built.clear()
            self._digests.clear()

    def __len__(self) -> int:
        return len(self._html)


def digest(inputs: tuple[object, ...]) -> bytes | None:
    """A 16-byte digest of the inputs' pickled values; None when they cannot be pickled."""
    try:
        data = pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        log.warning("banner rendered uncached: its inputs cannot be pickled (%s)", error)
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


def _same(kept: tuple[object, ...], sources: tuple[object, ...]) -> bool:
    return len(kept) == len(sources) and all(
        old is new or old == new for old, new in zip(kept, sources, strict=True)
    )
