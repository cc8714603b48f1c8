"""An installation's exception catalog and its segment budgets, with what each budget has spent
this month.

No Flask here: the console and `flask rules` call it. Every query is scoped to one installation;
an id of another installation's entry is not found. Each change is committed here, whole or not
at all (an import commits `upsert_entry` and `upsert_budget` with the rest of its file), and a
change to the catalog drops this process's compiled rule book. Entries and budgets are
validated by the domain's parsers.

Budget spend: each grant is charged to the segment budget its rule names, and that segment is
stored on the action; a budget's spend this month is the sum of the applied and approved
actions charged to it since the first of the month (UTC). So a customer who changes segment
mid-month does not move money between budgets, and a customer in two segments (a high-value
deal seeker) is not counted twice. A grant given in the shop is charged what the shop gave; one
the shop refused is charged nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.exceptions import (
    Budget,
    BudgetStatus,
    ExceptionType,
    InvalidExceptionType,
    SegmentRef,
    parse_budget,
    parse_exception_type,
)
from plugin.domain.personas import ConditionError
from plugin.goodwill import book_cache
from plugin.goodwill.action_log import GRANT_KINDS, charged_cents, gave_something
from plugin.goodwill.errors import NotFound
from plugin.models import Action, Installation, SegmentBudget
from plugin.models import ExceptionType as ExceptionTypeRow

# The catalog -------------------------------------------------------------------------------


def save_exception_type(
    session: Session,
    installation: Installation,
    raw: object,
    *,
    enabled: bool = True,
    now: datetime,
) -> ExceptionTypeRow:
    """Create or update a catalog entry by its key; raises InvalidExceptionType (with paths)."""
    entry = parse_entry(raw, installation.currency)
    row = upsert_entry(session, installation.id, entry.key, raw, enabled=enabled, now=now)
    session.commit()
    book_cache.forget(session, installation.id)
    return row


def parse_entry(raw: object, currency: str) -> ExceptionType:
    """Validate a catalog entry, also that it is priced in the installation's currency."""
    entry = parse_exception_type(raw)
    if entry.currency != currency:
        raise InvalidExceptionType(
            [ConditionError("currency", f"must be {currency}, this helpdesk's currency")]
        )
    return entry


def upsert_entry(
    session: Session, installation_id: int, key: str, raw: object, *, enabled: bool, now: datetime
) -> ExceptionTypeRow:
    """Create or update the entry with this key, uncommitted: a save or an import commits it."""
    assert isinstance(raw, Mapping)
    definition = copy.deepcopy(dict(raw))
    row = session.scalars(
        sa.select(ExceptionTypeRow).where(
            ExceptionTypeRow.installation_id == installation_id, ExceptionTypeRow.key == key
        )
    ).first()
    if row is None:
        row = ExceptionTypeRow(
            installation_id=installation_id,
            key=key,
            definition=definition,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    elif row.definition != definition or row.enabled != enabled:
        row.definition, row.enabled, row.updated_at = definition, enabled, now
    session.flush()
    return row


def exception_type_row(session: Session, installation_id: int, entry_id: int) -> ExceptionTypeRow:
    """The installation's catalog entry with this id; NotFound for any other installation's."""
    row = session.scalars(
        sa.select(ExceptionTypeRow).where(
            ExceptionTypeRow.id == entry_id, ExceptionTypeRow.installation_id == installation_id
        )
    ).first()
    if row is None:
        raise NotFound(f"There is no catalog entry {entry_id} in this helpdesk.")
    return row


def create_exception_type(
    session: Session, installation: Installation, raw: object, *, enabled: bool, now: datetime
) -> ExceptionTypeRow:
    """Add a catalog entry; InvalidExceptionType (with paths), also for a key already taken."""
    entry = parse_entry(raw, installation.currency)
    taken = session.scalars(
        sa.select(ExceptionTypeRow.id).where(
            ExceptionTypeRow.installation_id == installation.id, ExceptionTypeRow.key == entry.key
        )
    ).first()
    if taken is not None:
        raise InvalidExceptionType(
            [ConditionError("key", f"an entry {entry.key!r} exists already")]
        )
    return save_exception_type(session, installation, raw, enabled=enabled, now=now)


def set_exception_enabled(
    session: Session, installation: Installation, entry_id: int, *, enabled: bool, now: datetime
) -> ExceptionTypeRow:
    """Offer a catalog entry again, or stop offering it (rules keep naming it)."""
    row = exception_type_row(session, installation.id, entry_id)
    if row.enabled != enabled:
        row.enabled, row.updated_at = enabled, now
        session.commit()
        book_cache.forget(session, installation.id)
    return row


def catalog_rows(session: Session, installation_id: int) -> list[ExceptionTypeRow]:
    """The installation's catalog entries, by key."""
    return list(
        session.scalars(
            sa.select(ExceptionTypeRow)
            .where(ExceptionTypeRow.installation_id == installation_id)
            .order_by(ExceptionTypeRow.key)
        )
    )


# Budgets -----------------------------------------------------------------------------------


def set_budget(
    session: Session, installation: Installation, raw: object, *, now: datetime
) -> SegmentBudget:
    """Set a segment's monthly budget from `{"segment": {...}, "monthly_cents": n}`.

    Raises InvalidBudget listing every problem at its path.
    """
    budget = parse_budget(raw)
    row = upsert_budget(session, installation.id, budget, now=now)
    session.commit()
    return row


def upsert_budget(
    session: Session, installation_id: int, budget: Budget, *, now: datetime
) -> SegmentBudget:
    """Create or update the segment's budget, uncommitted: a save or an import commits it."""
    segment = budget.segment
    row = session.scalars(
        sa.select(SegmentBudget).where(
            SegmentBudget.installation_id == installation_id,
            SegmentBudget.field == segment.field,
            SegmentBudget.value == segment.value,
        )
    ).first()
    if row is None:
        row = SegmentBudget(
            installation_id=installation_id,
            field=segment.field,
            value=segment.value,
            monthly_cents=budget.monthly_cents,
            updated_at=now,
        )
        session.add(row)
    elif row.monthly_cents != budget.monthly_cents:
        row.monthly_cents, row.updated_at = budget.monthly_cents, now
    session.flush()
    return row


def month_start(now: datetime) -> datetime:
    """The first moment of now's calendar month (UTC, as stored)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def budget_statuses(
    session: Session, installation_id: int, *, now: datetime
) -> tuple[BudgetStatus, ...]:
    """Every segment budget with what was charged to it this month, in one grouped query."""
    spent = {
        (field, value): int(total or 0)
        for field, value, total in session.execute(
            sa.select(Action.budget_field, Action.budget_value, sa.func.sum(charged_cents()))
            .where(
                Action.installation_id == installation_id,
                Action.kind.in_(GRANT_KINDS),
                Action.undone_at.is_(None),
                gave_something(),
                Action.budget_field.is_not(None),
                Action.created_at >= month_start(now),
                Action.created_at <= now,
            )
            .group_by(Action.budget_field, Action.budget_value)
        )
    }
    return tuple(
        BudgetStatus(budget, spent.get((budget.segment.field, budget.segment.value), 0))
        for budget in budgets(session, installation_id)
    )


def budgets(session: Session, installation_id: int) -> list[Budget]:
    """The installation's segment budgets, by field and value."""
    return [
        Budget(SegmentRef(row.field, row.value), row.monthly_cents)
        for row in session.scalars(
            sa.select(SegmentBudget)
            .where(SegmentBudget.installation_id == installation_id)
            .order_by(SegmentBudget.field, SegmentBudget.value)
        )
    ]
