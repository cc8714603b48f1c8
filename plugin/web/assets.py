"""The service's own CSS and JS, served minified: comments and spaces are for the people who
read the source in static/, not for every sidebar that loads it.

For `.css` and `.js` files Flask's static route answers the minified text (rcssmin for CSS:
whitespace and comments go; calmjs.parse for JS: whitespace and comments go and a function's
local names shrink to a letter or two, while globals, properties and strings stay; rjsmin for a
script calmjs.parse cannot read, as it reads ES5 only), made once per file version and kept in
memory, with an ETag, and gzip-compressed (made once too) to a browser that accepts it. Every
other static file (images, the vendored ZAF SDK, already minified) is served as Flask serves it.

Their URLs carry the content: `url_for("static", filename="css/sidebar.css")` gives
`/static/css/sidebar.<12 hex of the minified text's hash>.css`, which is cached for a year as
immutable, so a repeat view asks for nothing, not even a revalidation; a changed file gets a
new name. A name whose hash is not the file's current one (a page rendered before a deploy)
gets the current text, revalidated on each use. The plain name still works, revalidated by ETag.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rcssmin
import rjsmin
from calmjs.parse import es5
from calmjs.parse.exceptions import ECMASyntaxError
from calmjs.parse.unparsers.es5 import minify_print
from flask import Flask, Response, abort, request, send_file
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join


def minify_js(source: str) -> str:
    """The script without comments and spaces, its local names shortened (the same text on
    every run, so every process serves it under one name); rjsmin's for a script calmjs.parse
    cannot parse (it reads ES5, not `const` or arrow functions)."""
    try:
        tree = es5(source)
    except ECMASyntaxError:
        return str(rjsmin.jsmin(source))
    return str(minify_print(tree, obfuscate=True, obfuscate_globals=False))


MINIFIERS: dict[str, tuple[str, Callable[[str], str]]] = {
    ".css": ("text/css", rcssmin.cssmin),
    ".js": ("text/javascript", minify_js),
}
# Minified texts by their source's hash, for every app of the process: parsing a script takes
# a few hundred milliseconds, paid once per version, not once per app.
_BY_SOURCE: dict[tuple[str, str], str] = {}
_BY_SOURCE_LOCK = threading.Lock()


def _minify(suffix: str, source: str) -> str:
    key = (suffix, hashlib.sha256(source.encode()).hexdigest())
    with _BY_SOURCE_LOCK:
        made = _BY_SOURCE.get(key)
    if made is None:
        made = MINIFIERS[suffix][1](source)
        with _BY_SOURCE_LOCK:
            _BY_SOURCE[key] = made
    return made


# What the sidebar page names: its own CSS and JS, and what only some of its cards load.
SIDEBAR_ASSETS = (
    "css/sidebar.css",
    "js/sidebar.js",
    "css/sidebar-review.css",
    "css/sidebar-more.css",
    "js/sidebar-actions.js",
    "js/sidebar-sync.js",
    "js/sidebar-amount.js",
    "js/sidebar-gestures.js",
)
# A versioned name: the file's stem, 12 hex digits of its minified text's hash, its suffix.
VERSIONED = re.compile(r"(?P<stem>.+)\.(?P<tag>[0-9a-f]{12})(?P<suffix>\.css|\.js)")
TAG_LENGTH = 12
# A versioned URL never changes its content: browsers and proxies may keep it a year.
IMMUTABLE = "public, max-age=31536000, immutable"
# How long a versioned name is used before its file is looked at again.
RECHECK_SECONDS = 1.0


class MinifiedAssets:
    """Minified copies of the static folder's CSS and JS, keyed by the file's size and mtime."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made: dict[str, tuple[tuple[int, int], bytes, str]] = {}
        self._gzipped: dict[str, tuple[str, bytes]] = {}
        # A page's file names as last looked up: (time.monotonic() then, the name).
        self._names: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def minified(self, filename: str) -> tuple[bytes, str] | None:
        """The file's minified bytes and their ETag; None for a file served as it is."""
        if Path(filename).suffix not in MINIFIERS or filename.endswith(".min.js"):
            return None
        joined = safe_join(str(self.folder), filename)
        if joined is None:
            abort(404)
        path = Path(joined)
        try:
            stat = path.stat()
        except OSError:
            abort(404)
        version = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            made = self._made.get(filename)
        if made is not None and made[0] == version:
            return made[1], made[2]
        body = _minify(path.suffix, path.read_text(encoding="utf-8")).encode()
        etag = hashlib.sha256(body).hexdigest()[:20]
        with self._lock:
            self._made[filename] = (version, body, etag)
        return body, etag

    def exists(self, filename: str) -> bool:
        """Is there such a file in the folder (a name that is not one, no)?"""
        joined = safe_join(str(self.folder), filename)
        return joined is not None and Path(joined).is_file()

    def versioned_name(self, filename: str) -> str:
        """The name that carries the content (`css/sidebar.3f2a…c1.css`), or the name itself
        for a file served as it is, or one that is not there.

        A page names a dozen files: each name is kept for `RECHECK_SECONDS` before the file is
        looked at again (a stat and a path join, about 40 µs a name), so an edited file gets
        its new name within that time, as the file served under it changes at once.
        """
        now = time.monotonic()
        with self._lock:
            kept = self._names.get(filename)
        if kept is not None and now - kept[0] < RECHECK_SECONDS:
            return kept[1]
        try:
            found = self.minified(filename)
        except NotFound:  # no such file: the plain name, which answers 404
            return filename
        if found is None:
            name = filename
        else:
            path = Path(filename)
            name = str(path.with_name(f"{path.stem}.{found[1][:TAG_LENGTH]}{path.suffix}"))
        with self._lock:
            self._names[filename] = (now, name)
        return name

    def gzipped(self, filename: str, body: bytes, etag: str) -> bytes:
        """The minified bytes gzip-compressed, made once per version (by its ETag)."""
        with self._lock:
            made = self._gzipped.get(filename)
        if made is not None and made[0] == etag:
            return made[1]
        # mtime=0: the same bytes every time, so every process serves the same variant.
        compressed = gzip.compress(body, compresslevel=9, mtime=0)
        with self._lock:
            self._gzipped[filename] = (etag, compressed)
        return compressed


def init_app(app: Flask) -> None:
    """Serve the static folder's CSS and JS minified through Flask's own static endpoint."""
    assert app.static_folder is not None
    assets = MinifiedAssets(Path(app.static_folder))
    # The sidebar page names these by their hash, so rendering it needs them minified: made
    # now (a few hundred milliseconds for sidebar.js, once per process), not on a new
    # worker's first view.
    for name in SIDEBAR_ASSETS:
        assets.versioned_name(name)

    def static(filename: str) -> Response:
        versioned = VERSIONED.fullmatch(filename)
        tag = None
        if versioned is not None and not assets.exists(filename):
            filename, tag = versioned["stem"] + versioned["suffix"], versioned["tag"]
        found = assets.minified(filename)
        if found is None:
            return app.send_static_file(filename)
        body, etag = found
        current = tag is not None and etag.startswith(tag)
        compress = request.accept_encodings["gzip"] > 0
        if compress:
            body, etag = assets.gzipped(filename, body, etag), f"{etag}-gz"
        answer = send_file(
            io.BytesIO(body),
            mimetype=MINIFIERS[Path(filename).suffix][0],
            etag=etag,
            conditional=True,
            max_age=None if tag is not None else app.get_send_file_max_age(filename),
        )
        if current:
            answer.headers["Cache-Control"] = IMMUTABLE
        elif tag is not None:
            answer.headers["Cache-Control"] = "no-cache"  # an old page's name: the current text
        answer.headers["Content-Type"] = f"{answer.mimetype}; charset=utf-8"
        answer.headers["Vary"] = "Accept-Encoding"
        if compress and answer.status_code == 200:
            answer.headers["Content-Encoding"] = "gzip"
        return answer

    app.view_functions["static"] = static

    @app.url_defaults
    def versioned_static(endpoint: str, values: dict[str, object]) -> None:
        name = values.get("filename")
        if endpoint == "static" and isinstance(name, str):
            values["filename"] = assets.versioned_name(name)
