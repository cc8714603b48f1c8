"""The sidebar's one read for a ticket whose requester the page knows, against the fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import fake_zendesk
from plugin.clock import utcnow
from plugin.helpdesks.http import CallBudget, new_session
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import ZendeskClient, ZendeskCredentials


@pytest.fixture
def zendesk() -> Iterator[fake_zendesk.FakeZendeskServer]:
    data = fake_zendesk.from_sample_data(utcnow().date(), public_key_pem="unused")
    with fake_zendesk.FakeZendeskServer(data) as server:
        yield server


def test_one_call_answers_the_requester_and_their_tickets_newest_first(
    zendesk: fake_zendesk.FakeZendeskServer,
) -> None:
    credentials = ZendeskCredentials.from_api_token(
        email=fake_zendesk.ADMIN_EMAIL, api_token=fake_zendesk.DEFAULT_API_TOKEN
    )
    data = zendesk.app_state.data
    ticket = min(data.tickets.values(), key=lambda t: int(t["id"]))
    requester_id = str(ticket["requester_id"])
    with new_session() as session:
        client = ZendeskClient(
            session=session, base_url=zendesk.url, credentials=credentials, budget=CallBudget()
        )
        zendesk.app_state.reset_counts()
        requester, tickets = client.requester_with_tickets(requester_id=requester_id)
        assert zendesk.app_state.total_calls() == 1
        assert requester == client.ticket(ticket_id=str(ticket["id"])).requester
        assert tickets == client.requester_tickets(requester_id=requester_id)
        assert str(ticket["id"]) in {t.id for t in tickets}
        assert [t.created_at for t in tickets] == sorted(
            (t.created_at for t in tickets), reverse=True
        )
        with pytest.raises(HelpdeskError) as unknown:
            client.requester_with_tickets(requester_id="999999999")
        assert not unknown.value.retryable
