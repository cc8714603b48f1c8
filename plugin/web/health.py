"""Liveness, readiness, metrics, the landing page and the favicon."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, request, send_from_directory, url_for
from werkzeug.wrappers import Response

from plugin import db, observability
from plugin.web.settings import settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers (a load balancer restarts it when this fails)."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, str | None], int]:
    """Ready: the database answers and is at the migration this code expects."""
    head = db.head_revision()
    try:
        engine = db.database().engine
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        current = db.schema_revision(engine)
    except sa.exc.SQLAlchemyError as error:
        # The error's class only: its text may name the database's host and user.
        current_app.logger.warning("not ready: database unreachable (%s)", type(error).__name__)
        return {"status": "not ready", "problem": "the database is unreachable"}, 503
    if current != head:
        problem = f"the database is at migration {current or 'none'}, the code needs {head}"
        return {"status": "not ready", "problem": problem + ": run flask db upgrade"}, 503
    return {"status": "ready", "migration": current}, 200


@bp.get("/metrics")
def metrics() -> Response | tuple[str, int]:
    """Prometheus metrics, for a scraper holding REGULARS_METRICS_TOKEN; off without one."""
    token = settings().metrics_token
    if not token:
        return "Metrics are off: set REGULARS_METRICS_TOKEN to turn them on.", 404
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(offered.encode(), token.encode()):
        return "Send the metrics token as a bearer token.", 401
    return observability.metrics_page(current_app)


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
