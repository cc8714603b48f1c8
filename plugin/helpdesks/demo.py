"""The demo helpdesk: a local stand-in for a helpdesk account, kept in the service's database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.order_numbers import mentioned_orders
from plugin.helpdesks.interface import (
    PersonNotFound,
    SatisfactionRating,
    TicketChange,
    TicketNotFound,
    TicketWithRequester,
    UnknownGroup,
    with_line,
)
from plugin.models import DemoNote, DemoTicket, DemoUser

PLATFORM = "demo"
# The demo account's agent groups, which its rules may route tickets to.
GROUPS = ("Support", "Experienced agents", "Billing")


class DemoHelpdesk:
    """Answer the helpdesk interface from the demo tables of one installation."""

    remote = False

    def __init__(self, session: Session, *, installation_id: int) -> None:
        self._session = session
        self._installation_id = installation_id

    def ticket(self, *, ticket_id: str) -> TicketWithRequester:
        row = self._session.scalars(
            sa.select(DemoTicket).where(
                DemoTicket.installation_id == self._installation_id,
                DemoTicket.external_id == ticket_id,
            )
        ).first()
        if row is None:
            raise TicketNotFound(ticket_id)
        return TicketWithRequester(ticket=_ticket(row), requester=self._requester(row.requester_id))

    def requester_tickets(self, *, requester_id: str) -> list[Ticket]:
        rows = self._session.scalars(
            sa.select(DemoTicket)
            .where(
                DemoTicket.installation_id == self._installation_id,
                DemoTicket.requester_id == requester_id,
            )
            .order_by(DemoTicket.created_at.desc())
        )
        return [_ticket(row) for row in rows]

    def user(self, *, user_id: str) -> Person:
        """Return a demo user; raises PersonNotFound for an id the demo has no user for."""
        person = self._person(user_id)
        if person is None:
            raise PersonNotFound(user_id)
        return person

    def satisfaction_ratings(
        self, *, since: datetime, max_pages: int
    ) -> Iterator[SatisfactionRating]:
        """The demo helpdesk sends no surveys (its effects history has satisfaction planted)."""
        return iter(())

    def _requester(self, user_id: str) -> Person:
        """A ticket's requester; one the demo no longer has still gets a placeholder."""
        return self._person(user_id) or Person(id=user_id, name="Unknown user")

    def _person(self, user_id: str) -> Person | None:
        user = self._session.scalars(
            sa.select(DemoUser).where(
                DemoUser.installation_id == self._installation_id,
                DemoUser.external_id == user_id,
            )
        ).first()
        if user is None:
            return None
        # The demo's supervisors are agents with a custom role, as on Zendesk Enterprise.
        role, role_ids = ("agent", (user.role,)) if user.role == "supervisor" else (user.role, ())
        return Person(
            id=user.external_id,
            name=user.name,
            email=user.email,
            phone=user.phone,
            role=role,
            role_ids=role_ids,
        )

    def role_names(self, *, role_ids: tuple[str, ...]) -> tuple[str, ...]:
        """The demo's custom roles are named by their names already; one no demo user has is
        unknown, and skipped as the interface says.
        """
        if not role_ids:
            return ()
        known = set(
            self._session.scalars(
                sa.select(DemoUser.role).where(
                    DemoUser.installation_id == self._installation_id,
                    DemoUser.role.in_(role_ids),
                )
            )
        )
        return tuple(role_id for role_id in role_ids if role_id in known)

    # --- The ticket writer (the action log's outbox) ----------------------------------------

    def add_note(
        self,
        *,
        ticket_id: str,
        body: str,
        tags: list[str],
        marker: str,
        change: TicketChange | None = None,
    ) -> None:
        """Store the note, add the tags and apply the change in the caller's transaction, so
        the outbox commits them together with the delivery's new state: on the demo, exactly
        once is atomic.
        """
        ticket = self._ticket_row(ticket_id)
        if self.has_note(ticket_id=ticket_id, marker=marker):
            return
        if change is not None and change.group is not None:
            group = next((g for g in GROUPS if g.casefold() == change.group.casefold()), None)
            if group is None:
                raise UnknownGroup("The demo helpdesk", change.group)
            ticket.group_name = group
        if change is not None:
            priority, line = change.priority_update(ticket.priority)
            body = with_line(body, marker, line)
            if priority is not None:
                ticket.priority = priority
        self._session.add(
            DemoNote(
                installation_id=self._installation_id, ticket_id=ticket_id, body=body, marker=marker
            )
        )
        missing = [tag for tag in dict.fromkeys(tags) if tag not in ticket.tags]
        if missing:
            # A new list, so the JSON column is seen as changed.
            ticket.tags = [*ticket.tags, *missing]
        self._session.flush()

    def has_note(self, *, ticket_id: str, marker: str) -> bool:
        self._ticket_row(ticket_id)
        found = self._session.scalar(
            sa.select(DemoNote.id).where(
                DemoNote.installation_id == self._installation_id,
                DemoNote.ticket_id == ticket_id,
                DemoNote.marker == marker,
            )
        )
        return found is not None

    def notes(self, *, ticket_id: str) -> list[DemoNote]:
        """The ticket's notes, oldest first, for the demo desk's ticket view."""
        return list(
            self._session.scalars(
                sa.select(DemoNote)
                .where(
                    DemoNote.installation_id == self._installation_id,
                    DemoNote.ticket_id == ticket_id,
                )
                .order_by(DemoNote.created_at, DemoNote.id)
            )
        )

    def _ticket_row(self, ticket_id: str) -> DemoTicket:
        row = self._session.scalars(
            sa.select(DemoTicket).where(
                DemoTicket.installation_id == self._installation_id,
                DemoTicket.external_id == ticket_id,
            )
        ).first()
        if row is None:
            raise TicketNotFound(ticket_id)
        return row


def _ticket(row: DemoTicket) -> Ticket:
    return Ticket(
        id=row.external_id,
        subject=row.subject,
        status=row.status,
        channel=row.channel,
        priority=row.priority,
        ticket_type=row.ticket_type,
        tags=tuple(row.tags),
        requester_id=row.requester_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description_orders=mentioned_orders(row.description),
    )
