"""Liveness, the landing page and the favicon."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, send_from_directory, url_for
from werkzeug.wrappers import Response

from plugin.web.settings import settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/")
def index() -> Response | tuple[str, int]:
    """Send a visitor to the demo when it is on; otherwise say what this service is."""
    if settings().demo_enabled:
        return redirect(url_for("demo.desk"))
    return "Regulars is running. Install the app in your helpdesk to use it.", 200


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Answer the browser's favicon request with the SVG icon."""
    assert current_app.static_folder is not None
    return send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )
