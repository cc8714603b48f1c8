"""A live server on 127.0.0.1 with the seeded demo, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from plugin import db
from tests.conftest import build_app, dispose_app
from tests.seeded_demo import SeededDemos

CHROMIUM = os.environ.get("REGULARS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def seeded_demo(folder: Path, seeded_demos: SeededDemos) -> Iterator[Flask]:
    """An app on a new SQLite database in `folder`, with the demo seeded."""
    if not (REPO / "static" / "vendor" / "zaf_sdk.min.js").exists():
        pytest.fail("static/vendor/zaf_sdk.min.js is missing: run scripts/setup.sh")
    app: Flask = build_app(f"sqlite:///{folder / 'live.sqlite3'}", folder / "instance")
    with db.database(app).sessions() as session:
        seeded_demos.load(app, session)
    try:
        yield app
    finally:
        dispose_app(app)


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve the app from a real HTTP server in a thread on 127.0.0.1; yield its base URL."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, seeded_demos: SeededDemos
) -> Iterator[str]:
    """Serve the seeded demo from a real HTTP server in a thread; yield its base URL."""
    with seeded_demo(tmp_path_factory.mktemp("live"), seeded_demos) as app, serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/setup.sh --test")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    yield page
    context.close()
