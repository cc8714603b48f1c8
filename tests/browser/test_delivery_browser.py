"""Delivery to tickets in headless Chromium: notes arrive on the demo's tickets, and the console
lists a dead action with its error and sends it again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from plugin import db
from plugin.clock import utcnow
from plugin.models import Action, Delivery
from tests.browser.conftest import serving
from tests.browser.test_console_browser import console_frame, screenshot, watch_for_errors
from tests.conftest import build_app, dispose_app
from tests.seeded_demo import SeededDemos

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_with_worker(tmp_path: Path, seeded_demos: SeededDemos) -> Iterator[tuple[Flask, str]]:
    """The seeded demo served with its in-process outbox worker on, as `flask run` has it."""
    app = build_app(
        f"sqlite:///{tmp_path / 'live.sqlite3'}",
        tmp_path / "instance",
        outbox_in_process=True,
        outbox_backoff_ms=200,
        undo_seconds=1,  # a short undo window: the gone action below is tried soon
    )
    with db.database(app).sessions() as session:
        seeded_demos.load(app, session)
    try:
        with serving(app) as url:
            yield app, url
    finally:
        from plugin.delivery.cli import stop_in_process

        stop_in_process(app)
        dispose_app(app)


def test_notes_arrive_on_the_ticket_and_a_dead_one_is_retried_from_the_console(
    demo_with_worker: tuple[Flask, str], page: Page, tmp_path: Path
) -> None:
    app, url = demo_with_worker
    problems = watch_for_errors(page)
    with db.database(app).sessions() as session:
        ticket_id = session.scalars(sa.select(Action.ticket_id).order_by(Action.id)).first()
    assert ticket_id is not None

    page.goto(f"{url}/demo")  # the first request starts the worker
    page.get_by_role("button", name="All tickets").click()
    page.locator(f'button[data-ticket-id="{ticket_id}"]').click()
    notes = page.locator("#ticket-notes .note")
    # The seed's actions on one ticket are all past their undo window: one note carries them.
    expect(notes.first).to_contain_text("Regulars · ", timeout=15_000)
    expect(notes.first).to_contain_text("Applied: ")
    expect(notes.first).to_contain_text("By: ")
    expect(notes.first).to_contain_text("Ref: regulars-action-demo-seed-")
    page.locator("#ticket-notes").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "delivery-demo-notes.png")

    # An action whose ticket is gone from the helpdesk: parked dead at its first attempt.
    with db.database(app).sessions() as session:
        first = session.scalars(sa.select(Action).order_by(Action.id)).first()
        assert first is not None
        gone = Action(
            installation_id=first.installation_id,
            ticket_id="99999",
            requester_id=first.requester_id,
            agent_id=first.agent_id,
            kind="dismissed",
            exception_key=first.exception_key,
            currency="USD",
            reason_code=None,
            text="",
            idempotency_key="browser-gone-0001",
            created_at=utcnow(),
        )
        session.add(gone)
        session.commit()
        gone_id = gone.id
    for _ in range(100):
        with db.database(app).sessions() as session:
            if session.scalar(sa.select(Delivery.status).where(Delivery.action_id == gone_id)) == (
                "dead"
            ):
                break
        page.wait_for_timeout(100)

    page.get_by_role("button", name="Admin console").click()
    frame = console_frame(page)
    section = frame.locator("#deliveries")
    expect(section).to_contain_text("Ticket gone", timeout=15_000)
    expect(section).to_contain_text("ticket 99999 was not found")
    # The count of dead actions says how many need an admin.
    expect(section.locator('[data-part="delivery-counts"]')).to_contain_text(
        re.compile(r"\d+\sdead")
    )
    section.scroll_into_view_if_needed()
    screenshot(page, tmp_path, "delivery-console-dead.png")

    section.get_by_role("button", name=f"Retry action {gone_id}").click()
    expect(section.get_by_role("status")).to_contain_text(
        f"Action {gone_id} will be sent again in a moment."
    )
    assert problems == []
