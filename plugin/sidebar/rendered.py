"""Rendered banners kept per process, keyed by the whole of what the template reads.

A warm view's data comes from caches in a few microseconds, and rendering the banner's
template then cost about a third of the view's CPU (issue 19). Most views of a ticket render
the very same HTML, so the HTML is kept, keyed by a digest of the template's inputs *as values*
(pickled: any change of any field is another key, never a wrong hit) plus the words every
time-dependent expression gives now ("3 days ago", "since May 2014 · 11 years"): relative
times are part of the key, not frozen in the entry. Nothing here knows Flask.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from collections.abc import Callable

from cachetools import LRUCache

log = logging.getLogger(__name__)

# A few thousand banners (about 6 KB each): the tickets a worker's agents have open.
DEFAULT_ENTRIES = 2048


class RenderedBanners:
    """An LRU of rendered HTML by input digest; `enabled=False` renders every time."""

    def __init__(self, *, entries: int = DEFAULT_ENTRIES, enabled: bool = True) -> None:
        self.enabled = enabled
        self._html: LRUCache[bytes, str] = LRUCache(maxsize=entries)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def render(self, inputs: tuple[object, ...], render: Callable[[], str]) -> str:
        """The HTML `render()` gives for these inputs, rendered once per distinct inputs.

        `inputs` must hold everything the template's output depends on, as values; inputs
        that cannot be pickled (a new kind of object in the view) are rendered uncached.
        """
        if not self.enabled:
            return render()
        key = digest(inputs)
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

    def clear(self) -> None:
        with self._lock:
            self._html.clear()

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
