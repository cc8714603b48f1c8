"""The service's own CSS and JS are served minified, revalidated by ETag; other static files
as they are, and nothing outside the static folder."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugin.models import Installation

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_css_and_js_are_minified_and_still_whole(client: FlaskClient) -> None:
    for name, kept in (
        ("css/sidebar.css", ".rg-offer__go"),
        ("js/sidebar.js", "data-rg-action"),
    ):
        source = (STATIC / name).read_bytes()
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200
        body = answer.get_data()
        assert len(body) < 0.95 * len(source), name
        assert kept.encode() in body
        assert b"/*" not in body and b"\n  " not in body  # comments and indentation are gone
        assert answer.headers["Content-Type"].endswith("charset=utf-8")
        assert answer.headers["ETag"]


def test_an_unchanged_asset_answers_304(client: FlaskClient) -> None:
    etag = client.get("/static/js/sidebar.js").headers["ETag"]
    again = client.get("/static/js/sidebar.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""


def test_a_changed_file_is_minified_again(app: Flask, tmp_path: Path) -> None:
    from plugin.web.assets import MinifiedAssets

    (tmp_path / "a.css").write_text("/* note */\n.a {\n  color: red;\n}\n", encoding="utf-8")
    assets = MinifiedAssets(tmp_path)
    first = assets.minified("a.css")
    assert first is not None and first[0] == b".a{color:red}"
    (tmp_path / "a.css").write_text(".b {\n  color: blue;\n}\n", encoding="utf-8")
    stat = (tmp_path / "a.css").stat()
    os.utime(tmp_path / "a.css", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = assets.minified("a.css")
    assert second is not None and second[0] == b".b{color:blue}" and second[1] != first[1]


def test_other_files_are_served_as_they_are(client: FlaskClient) -> None:
    for name in ("vendor/zaf_sdk.min.js", "favicon.svg"):
        with client.get(f"/static/{name}") as answer:
            assert answer.status_code == 200
            assert answer.get_data() == (STATIC / name).read_bytes()


def test_nothing_outside_the_static_folder(client: FlaskClient) -> None:
    for path in ("/static/../setup.cfg", "/static/css/../../setup.cfg", "/static/css/none.css"):
        assert client.get(path).status_code == 404
    assert client.get("/static/%2e%2e/plugin/config.py").status_code == 404


def test_css_and_js_are_gzipped_for_a_browser_that_accepts_it(client: FlaskClient) -> None:
    import gzip

    plain = client.get("/static/js/sidebar.js")
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    packed = client.get("/static/js/sidebar.js", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert len(packed.get_data()) < 0.5 * len(plain.get_data())
    # Each variant has its own ETag, and revalidates to a 304 with the right one.
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = client.get(
        "/static/js/sidebar.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]},
    )
    assert again.status_code == 304 and "Content-Encoding" not in again.headers
    refused = client.get("/static/js/sidebar.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


def test_pages_name_css_and_js_by_their_content_and_those_urls_are_immutable(
    client: FlaskClient, app: Flask
) -> None:
    import re

    from flask import url_for

    with app.test_request_context():
        css = url_for("static", filename="css/sidebar.css")
        sdk = url_for("static", filename="vendor/zaf_sdk.min.js")
    assert re.fullmatch(r"/static/css/sidebar\.[0-9a-f]{12}\.css", css)
    assert sdk == "/static/vendor/zaf_sdk.min.js"  # already minified: served as it is
    versioned = client.get(css)
    plain = client.get("/static/css/sidebar.css")
    assert versioned.status_code == 200 and versioned.get_data() == plain.get_data()
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "immutable" not in plain.headers.get("Cache-Control", "")
    # A page rendered before a deploy names the old text: it gets the current one, revalidated.
    stale = client.get("/static/css/sidebar.000000000000.css")
    assert stale.status_code == 200 and stale.get_data() == plain.get_data()
    assert stale.headers["Cache-Control"] == "no-cache"
    assert client.get("/static/css/none.0123456789ab.css").status_code == 404
    with app.test_request_context():
        assert url_for("static", filename="css/none.css") == "/static/css/none.css"


def test_a_changed_file_gets_a_new_name_within_the_recheck_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin.web.assets import RECHECK_SECONDS, MinifiedAssets

    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    (tmp_path / "a.css").write_text(".a { color: red; }", encoding="utf-8")
    assets = MinifiedAssets(tmp_path)
    first = assets.versioned_name("a.css")
    (tmp_path / "a.css").write_text(".a { color: blue; }", encoding="utf-8")
    stat = (tmp_path / "a.css").stat()
    os.utime(tmp_path / "a.css", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert assets.versioned_name("a.css") == first, "the name is kept a moment"
    served = assets.minified("a.css")
    assert served is not None and b"blue" in served[0], "the file served is the new one"
    clock[0] += RECHECK_SECONDS
    assert assets.versioned_name("a.css") != first


def test_scripts_lose_their_long_local_names_but_keep_globals_and_strings() -> None:
    import subprocess
    import sys

    from plugin.web.assets import minify_js

    source = (
        "(function () {\n  'use strict';\n  var sessionToken = document.body"
        ".getAttribute('data-session-token');\n  function send(url) {\n"
        "    return fetch(url, { headers: { Authorization: 'Bearer ' + sessionToken } });\n"
        "  }\n  window.addEventListener('load', function () { send('/x'); });\n})();\n"
    )
    small = minify_js(source)
    assert "sessionToken" not in small and "send" not in small  # local: shortened
    for kept in ("document.body", "'data-session-token'", "fetch(", "Authorization:", "window"):
        assert kept in small  # globals, properties and strings as they were
    # The same text in every process (hash seeds differ), so every worker names it alike.
    code = "import sys; from plugin.web.assets import minify_js; print(minify_js(sys.stdin.read()))"
    for seed in ("1", "2"):
        other = subprocess.run(
            [sys.executable, "-c", code],
            input=source,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=Path(__file__).resolve().parents[2],
        )
        assert other.stdout.rstrip("\n") == small


def test_a_script_the_parser_cannot_read_is_still_minified() -> None:
    from plugin.web.assets import minify_js

    # ES2015 (const, arrow functions): beyond the ES5 parser, left to rjsmin.
    source = "/* demo */\nconst answer = (value) => {\n  return value * 2;\n};\n"
    assert minify_js(source) == "const answer=(value)=>{return value*2;};"


def test_the_sidebar_page_names_what_only_some_cards_load(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    """The account review's styles, those of what shows after a click or on some cards, the
    scripts that send the forms, store the banner, follow the amount and the gestures are not
    linked: sidebar.js loads them with the parts that use them, by the names the page gives."""
    import re

    from tests.sidebar.test_orders_views import launch_page

    page = launch_page(app, client, demo_installation)
    linked = re.findall(r'<(?:link[^>]+href|script[^>]+src)="(/static/(?:css|js)/[^"]+)"', page)
    assert [re.sub(r"\.[0-9a-f]{12}\.", ".", link) for link in linked] == [
        "/static/css/sidebar.css",
        "/static/js/sidebar.js",
    ]
    later = dict(re.findall(r'data-asset-([a-z-]+)="([^"]+)"', page))
    assert set(later) == {
        "review-css",
        "more-css",
        "actions-js",
        "sync-js",
        "amount-js",
        "gestures-js",
    }
    for name, url in later.items():
        kind = name.rsplit("-", 1)[1]
        assert re.fullmatch(rf"/static/{kind}/sidebar-[a-z]+\.[0-9a-f]{{12}}\.{kind}", url), url
        answer = client.get(url)
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    review = client.get(later["review-css"]).get_data(as_text=True)
    assert ".rg-review__mark" in review
    assert ".rg-review" not in client.get(linked[0]).get_data(as_text=True)
    more = client.get(later["more-css"]).get_data(as_text=True)
    assert ".rg-result" in more and ".rg-stats" in more
    assert ".rg-result" not in client.get(linked[0]).get_data(as_text=True)


def test_the_sidebar_pages_files_are_minified_when_the_app_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin.web import assets
    from tests.conftest import build_app, dispose_app

    monkeypatch.setattr(assets, "_BY_SOURCE", {})
    dispose_app(build_app(f"sqlite:///{tmp_path / 'app.sqlite3'}", tmp_path / "instance"))
    for name in assets.SIDEBAR_ASSETS:
        source = (STATIC / name).read_text(encoding="utf-8")
        key = (Path(name).suffix, hashlib.sha256(source.encode()).hexdigest())
        assert key in assets._BY_SOURCE, name  # no view waits for the parse
