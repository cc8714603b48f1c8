"""The service's own CSS and JS, served minified: comments and spaces are for the people who
read the source in static/, not for every sidebar that loads it.

Flask's static route keeps its URLs (`url_for("static", ...)`); for `.css` and `.js` files it
answers the minified text (rcssmin, rjsmin: whitespace and comments go, names stay), made once
per file version and kept in memory, with an ETag so a browser revalidates cheaply, and
gzip-compressed (made once too) to a browser that accepts it. Every other static file (images,
the vendored ZAF SDK, already minified) is served as Flask serves it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path

import rcssmin
import rjsmin
from flask import Flask, Response, abort, request, send_file
from werkzeug.security import safe_join

MINIFIERS: dict[str, tuple[str, Callable[[str], str]]] = {
    ".css": ("text/css", rcssmin.cssmin),
    ".js": ("text/javascript", rjsmin.jsmin),
}


class MinifiedAssets:
    """Minified copies of the static folder's CSS and JS, keyed by the file's size and mtime."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made: dict[str, tuple[tuple[int, int], bytes, str]] = {}
        self._gzipped: dict[str, tuple[str, bytes]] = {}
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
        _, minify = MINIFIERS[path.suffix]
        body = minify(path.read_text(encoding="utf-8")).encode()
        etag = hashlib.sha256(body).hexdigest()[:20]
        with self._lock:
            self._made[filename] = (version, body, etag)
        return body, etag

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

    def static(filename: str) -> Response:
        found = assets.minified(filename)
        if found is None:
            return app.send_static_file(filename)
        body, etag = found
        compress = request.accept_encodings["gzip"] > 0
        if compress:
            body, etag = assets.gzipped(filename, body, etag), f"{etag}-gz"
        answer = send_file(
            io.BytesIO(body),
            mimetype=MINIFIERS[Path(filename).suffix][0],
            etag=etag,
            conditional=True,
            max_age=app.get_send_file_max_age(filename),
        )
        answer.headers["Content-Type"] = f"{answer.mimetype}; charset=utf-8"
        answer.headers["Vary"] = "Accept-Encoding"
        if compress and answer.status_code == 200:
            answer.headers["Content-Encoding"] = "gzip"
        return answer

    app.view_functions["static"] = static
