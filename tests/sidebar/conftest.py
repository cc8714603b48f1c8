"""The sidebar's tests' shared harness: the service against the fake Zendesk on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from bench import fake_zendesk
from bench.sidebar_views import service, session_token
from plugin import db
from plugin.clock import utcnow
from plugin.models import Installation


class Sidebar:
    """The service with the fake's account registered, a signed-in agent, the fake's state."""

    def __init__(self, app: Flask, token: str, zendesk: fake_zendesk.FakeZendeskServer) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.token = token
        self.zendesk = zendesk
        data = zendesk.app_state.data
        tickets = sorted(data.tickets.values(), key=lambda t: int(t["id"]))
        self.ticket: dict[str, Any] = tickets[0]

    def banner(self, **page: str) -> str:
        query = {
            "ticket_id": str(self.ticket["id"]),
            "requester_id": str(self.ticket["requester_id"]),
        } | page
        response = self.client.get(
            "/sidebar/banner",
            query_string=query,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    def installation_id(self) -> int:
        with db.database(self.app).sessions() as session:
            found = session.scalar(
                sa.select(Installation.id).where(Installation.account == "bench")
            )
            assert found is not None
            return found


@pytest.fixture
def sidebar(database_url: str, tmp_path: Path) -> Iterator[Sidebar]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem=pem)
    with (
        fake_zendesk.FakeZendeskServer(data) as zendesk,
        service(tmp_path, zendesk.url, database_url) as app,
    ):
        token = session_token(app.test_client(), key)  # fetches the app's public key
        zendesk.app_state.reset_counts()
        yield Sidebar(app, token, zendesk)
