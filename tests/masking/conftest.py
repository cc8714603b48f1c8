"""Masking's tests' harness: masks set in the seeded demo, and its agents' sidebar sessions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.masking.settings import save_role_masks
from plugin.models import Installation
from tests.sidebar.test_views import demo_token, launch, session_token

AGENT = "80001"  # Sam Carter, role "agent"
ADMIN = "80004"  # Diane Foster, role "admin"
HIGH_VALUE_TICKET, HIGH_VALUE_REQUESTER = "1058", "90001"  # Margaret Okafor


def set_masks(
    session: Session,
    installation: Installation,
    by_role: Mapping[str, Iterable[str]],
    default: Iterable[str] = (),
) -> None:
    save_role_masks(session, installation.id, by_role=by_role, default=default, user_id=ADMIN)
    session.commit()


def bearer_for(
    app: Flask, client: FlaskClient, installation: Installation, user: str
) -> dict[str, str]:
    """The sidebar session a launch by `user` gets (its roles asked of the demo helpdesk)."""
    page = launch(client, demo_token(app, installation, sub=user))
    assert page.status_code == 200
    return {"Authorization": f"Bearer {session_token(page.get_data(as_text=True))}"}


def card(client: FlaskClient, path: str, bearer: Mapping[str, str], **query: str) -> str:
    response = client.get(
        path,
        query_string={"ticket_id": HIGH_VALUE_TICKET, "requester_id": HIGH_VALUE_REQUESTER} | query,
        headers=dict(bearer),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)
