"""A console session asks the helpdesk for its user's role again once its check is a few
minutes old: a supervisor or admin removed in the helpdesk loses the console promptly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.console import views as console_views
from plugin.helpdesks.interface import HelpdeskError
from plugin.models import DemoUser, Installation
from tests.clock import FakeClock
from tests.console.test_views import ADMIN, text_of
from tests.goodwill.console_world import SUPERVISOR, bearer_for

RECHECK = 300  # REGULARS_CONSOLE_ROLE_RECHECK_SECONDS' default


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(console_views, "_clock", clock)
    return clock


def set_role(session: Session, installation: Installation, user: str, role: str) -> None:
    session.execute(
        sa.update(DemoUser)
        .where(DemoUser.installation_id == installation.id, DemoUser.external_id == user)
        .values(role=role)
    )
    session.commit()


def test_a_supervisor_removed_in_the_helpdesk_loses_the_console_at_the_next_check(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    fake_clock: FakeClock,
) -> None:
    headers = bearer_for(app, client, demo_installation, SUPERVISOR)
    assert client.get("/console/rules", headers=headers).status_code == 200
    demo_installation.supervisor_roles = []  # the admin names no supervisors any more
    session.commit()

    fake_clock.advance(RECHECK - 1)
    assert client.get("/console/rules", headers=headers).status_code == 200  # not checked yet
    fake_clock.advance(2)
    refused = client.get("/console/rules", headers=headers)
    assert refused.status_code == 403
    assert "Your access to the Regulars console has ended" in text_of(refused)
    # And stays refused, without asking the helpdesk on every request.
    assert client.get("/console/catalog", headers=headers).status_code == 403


def test_an_admin_made_an_agent_loses_the_admin_sections_but_a_supervisor_keeps_the_rest(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    fake_clock: FakeClock,
) -> None:
    admin = bearer_for(app, client, demo_installation, ADMIN)
    assert client.get("/console/roles", headers=admin).status_code == 200
    set_role(session, demo_installation, ADMIN, "agent")
    fake_clock.advance(RECHECK + 1)
    assert client.get("/console/roles", headers=admin).status_code == 403


def test_a_role_still_held_goes_on_after_the_check(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    fake_clock: FakeClock,
) -> None:
    headers = bearer_for(app, client, demo_installation, SUPERVISOR)
    fake_clock.advance(RECHECK + 1)
    assert client.get("/console/rules", headers=headers).status_code == 200
    assert client.get("/console/roles", headers=headers).status_code == 403  # admins only


def test_a_helpdesk_that_cannot_answer_the_check_closes_the_console_for_now(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    fake_clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = bearer_for(app, client, demo_installation, ADMIN)

    class Failing:
        def user(self, *, user_id: str) -> object:
            raise HelpdeskError("the helpdesk answered 503", retryable=True)

    monkeypatch.setattr(console_views, "client_for", lambda _installation: Failing())
    fake_clock.advance(RECHECK + 1)
    answer = client.get("/console/rules", headers=headers)
    assert answer.status_code == 503
    assert "could not check your role in the helpdesk again" in text_of(answer)


def test_a_user_the_helpdesk_deleted_is_refused(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    fake_clock: FakeClock,
) -> None:
    headers = bearer_for(app, client, demo_installation, ADMIN)
    session.execute(
        sa.delete(DemoUser).where(
            DemoUser.installation_id == demo_installation.id, DemoUser.external_id == ADMIN
        )
    )
    session.commit()
    fake_clock.advance(RECHECK + 1)
    assert client.get("/console/rules", headers=headers).status_code == 403
