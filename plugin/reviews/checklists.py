"""An installation's checklist templates: listing them, their form, saving and switching off.

No Flask here: the console (`plugin/reviews/console_views.py`) calls it, and a ticket's review
(`plugin/reviews/tickets.py`) reads the templates through it. Every query is scoped to one
installation; an id of another installation's template or item is not found. `save_template`
takes the template and its items in one form, validated by `plugin.domain.reviews.parse_template`.
Templates are disabled, never deleted, so the reviews done on them keep their checklist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.reviews import (
    Audience,
    AudienceKind,
    ChecklistItem,
    InvalidTemplate,
    ItemRow,
    TemplateForm,
    parse_template,
)
from plugin.domain.reviews import ReviewTemplate as Template
from plugin.models import Installation, Persona, ReviewItem, ReviewTemplate


class TemplateNotFound(LookupError):
    """No such checklist template in this installation."""


def _domain(row: ReviewTemplate, items: Iterable[ReviewItem]) -> Template:
    raw = row.audience or {}
    audience = Audience(
        tiers=frozenset(raw.get(AudienceKind.TIER.value, ())),
        rfm_segments=frozenset(raw.get(AudienceKind.RFM_SEGMENT.value, ())),
        lifecycle_stages=frozenset(raw.get(AudienceKind.LIFECYCLE_STAGE.value, ())),
        personas=frozenset(raw.get(AudienceKind.PERSONA.value, ())),
    )
    return Template(
        name=row.name,
        audience=audience,
        items=tuple(
            ChecklistItem(label=i.label, required=i.required, help=i.help_text, item_id=i.id)
            for i in sorted(items, key=lambda i: (i.position, i.id))
        ),
        description=row.description,
        priority=row.priority,
        enabled=row.enabled,
        template_id=row.id,
    )


def list_templates(session: Session, installation_id: int) -> list[Template]:
    """The installation's templates, in the order they are chosen (priority, then name)."""
    rows = list(
        session.scalars(
            sa.select(ReviewTemplate).where(ReviewTemplate.installation_id == installation_id)
        )
    )
    items: dict[int, list[ReviewItem]] = {row.id: [] for row in rows}
    for item in session.scalars(
        sa.select(ReviewItem).where(ReviewItem.installation_id == installation_id)
    ):
        items.setdefault(item.template_id, []).append(item)
    templates = [_domain(row, items[row.id]) for row in rows]
    return sorted(templates, key=lambda t: (t.priority, t.name.casefold(), t.name))


def template_of(session: Session, installation_id: int, template_id: int) -> Template:
    """One template with its items; TemplateNotFound for another installation's id."""
    row = _template_row(session, installation_id, template_id)
    return _domain(row, _items_of(session, installation_id, row.id))


def _template_row(session: Session, installation_id: int, template_id: int) -> ReviewTemplate:
    row = session.get(ReviewTemplate, template_id)
    if row is None or row.installation_id != installation_id:
        raise TemplateNotFound(template_id)
    return row


def _items_of(session: Session, installation_id: int, template_id: int) -> list[ReviewItem]:
    return list(
        session.scalars(
            sa.select(ReviewItem)
            .where(
                ReviewItem.installation_id == installation_id,
                ReviewItem.template_id == template_id,
            )
            .order_by(ReviewItem.position, ReviewItem.id)
        )
    )


def persona_names(session: Session, installation_id: int) -> list[str]:
    """The installation's persona names, which a template's audience may list."""
    return list(
        session.scalars(
            sa.select(Persona.name)
            .where(Persona.installation_id == installation_id)
            .order_by(Persona.name)
        )
    )


def template_form(template: Template) -> TemplateForm:
    """A stored template as its form shows it."""
    return TemplateForm(
        name=template.name,
        description=template.description,
        priority=str(template.priority),
        enabled=template.enabled,
        audience={kind.value: sorted(template.audience.of(kind)) for kind in AudienceKind},
        items=tuple(
            ItemRow(
                label=item.label,
                help=item.help,
                required=item.required,
                position=str(position),
                item_id=item.item_id,
            )
            for position, item in enumerate(template.items, start=1)
        ),
    )


def save_template(
    session: Session,
    installation: Installation,
    form: TemplateForm,
    *,
    template_id: int | None = None,
    now: datetime,
) -> Template:
    """Create or update a template and its items from the form, and commit.

    Items keep their ids (and so the checks made on them) when edited or moved; rows marked
    for removal, and items the form no longer has, are deleted. Raises InvalidTemplate with a
    message per field, TemplateNotFound for another installation's template.
    """
    row = _template_row(session, installation.id, template_id) if template_id else None
    errors: dict[str, str] = {}
    try:
        parsed = parse_template(
            form, personas=persona_names(session, installation.id), template_id=template_id
        )
    except InvalidTemplate as invalid:
        errors, parsed = invalid.errors, None
    clash = session.scalar(
        sa.select(ReviewTemplate.id).where(
            ReviewTemplate.installation_id == installation.id,
            ReviewTemplate.name == " ".join(form.name.split()),
        )
    )
    if clash is not None and clash != template_id and "name" not in errors:
        errors["name"] = "another checklist has this name"
    existing = {i.id: i for i in _items_of(session, installation.id, row.id)} if row else {}
    for index, item_row in enumerate(form.items):
        if item_row.item_id is not None and item_row.item_id not in existing:
            errors[f"items-{index}-label"] = "this item is no longer in the checklist; reload"
    if errors or parsed is None:
        raise InvalidTemplate(errors)
    if row is None:
        row = ReviewTemplate(installation_id=installation.id, created_at=now)
        session.add(row)
    row.name = parsed.name
    row.description = parsed.description
    row.audience = parsed.audience.as_json()
    row.priority = parsed.priority
    row.enabled = parsed.enabled
    row.updated_at = now
    session.flush()
    kept: set[int] = set()
    for position, item in enumerate(parsed.items, start=1):
        stored = existing.get(item.item_id) if item.item_id is not None else None
        if stored is None:
            stored = ReviewItem(installation_id=installation.id, template_id=row.id)
            session.add(stored)
        stored.position = position
        stored.label = item.label
        stored.help_text = item.help
        stored.required = item.required
        if item.item_id is not None:
            kept.add(item.item_id)
    for item_id, stored in existing.items():
        if item_id not in kept:
            session.delete(stored)
    session.commit()
    return template_of(session, installation.id, row.id)


def set_template_enabled(
    session: Session, installation: Installation, template_id: int, *, enabled: bool, now: datetime
) -> Template:
    """Turn a template on or off; reviews already begun on it carry on."""
    row = _template_row(session, installation.id, template_id)
    row.enabled = enabled
    row.updated_at = now
    session.commit()
    return template_of(session, installation.id, template_id)
