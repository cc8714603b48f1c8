"""Every endpoint, found from the app's URL map: without credentials, nothing is read or written.

A request with no launch token, bearer session, installation secret, push token or CSRF token
gets a refusal (400, 401, 403, 404 or 405), never a page of data, a redirect into the app or a
500, and no table changes. New endpoints are covered as soon as they are registered; the few
that are public on purpose are listed with why.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from plugin.models import Base, Installation

# Public on purpose: (method, rule) -> why.
PUBLIC = {
    ("GET", "/"): "the landing page (redirects to the demo when it is on)",
    ("GET", "/healthz"): "liveness for the load balancer",
    ("GET", "/readyz"): "readiness for the load balancer (says no data)",
    ("GET", "/favicon.ico"): "the icon",
    ("GET", "/static/<path:filename>"): "the service's own CSS, JS and images",
    ("GET", "/demo"): "the demo desk (only while the demo is on)",
    ("GET", "/demo/freshdesk"): "the demo desk's Freshdesk view (only while the demo is on)",
    ("GET", "/demo/freshdesk/app/<path:path>"): "the packaged Freshdesk page (public files)",
    ("GET", "/demo/shop"): "the demo's shop: what gestures gave there (only while the demo is on)",
    ("GET", "/setup/freshdesk"): "the Freshdesk setup form: an admin's way in, holds no data",
}
REFUSALS = {400, 401, 403, 404, 405}


def example_path(rule: Rule) -> str:
    """The rule's path with a plausible value in each variable (an id of 1, a name x)."""

    def value(match: re.Match[str]) -> str:
        converter = match.group(1) or "string"
        return "1" if converter in {"int", "float"} else "x"

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", value, rule.rule)


def routes(app: Flask) -> list[tuple[str, Rule]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule))
    return found


def row_counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {
        table.name: session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in Base.metadata.sorted_tables
    }


def test_no_endpoint_answers_or_changes_anything_without_credentials(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    before = row_counts(session)
    checked = []
    for method, rule in routes(app):
        if (method, rule.rule) in PUBLIC:
            continue
        path = example_path(rule)
        answer = client.open(path, method=method, data={"ticket_id": "1058"})
        checked.append(f"{method} {rule.rule}")
        assert answer.status_code in REFUSALS, (
            f"{method} {rule.rule} ({path}) answered {answer.status_code} without credentials"
        )
    assert len(checked) >= 10
    assert row_counts(session) == before
    print(f"{len(checked)} endpoints refused a request without credentials")


def test_the_public_endpoints_are_still_there(app: Flask) -> None:
    """The list of public endpoints stays true: each still exists (or is removed from it)."""
    registered = {(method, rule.rule) for method, rule in routes(app)}
    assert set(PUBLIC) <= registered
