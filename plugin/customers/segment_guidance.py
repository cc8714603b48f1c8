"""Handling guidance per segment: what supervisors tell agents to do for each value tier, RFM
segment, lifecycle stage and behaviour, stored per installation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.settings_forms import InvalidForm, check_length, clean_text
from plugin.domain.behaviour import Behaviour
from plugin.domain.lifecycle import LifecycleStage
from plugin.domain.recognition import segment_label
from plugin.domain.rfm import RfmSegment
from plugin.domain.tiers import Tier
from plugin.models import Installation, SegmentGuidance

# The longest guidance text, for a segment or a persona.
GUIDANCE_MAX = 1000


@dataclass(frozen=True)
class GuidanceKind:
    """A kind of segment that guidance can be attached to, and its segments."""

    kind: str
    title: str
    values: tuple[str, ...]

    def key(self, value: str) -> str:
        """The form's name for one segment's text: `tier.high`."""
        return f"{self.kind}.{value}"

    def label(self, value: str) -> str:
        return f"{segment_label(value)} value" if self.kind == "tier" else segment_label(value)


GUIDANCE_KINDS = (
    GuidanceKind("tier", "Value tiers", tuple(reversed(Tier))),
    GuidanceKind("rfm_segment", "RFM segments", tuple(RfmSegment)),
    GuidanceKind("lifecycle_stage", "Lifecycle stages", tuple(LifecycleStage)),
    GuidanceKind("behaviour", "Behaviour", tuple(Behaviour)),
)


def guidance_keys() -> Iterator[tuple[GuidanceKind, str]]:
    for kind in GUIDANCE_KINDS:
        for value in kind.values:
            yield kind, value


def guidance_texts(session: Session, installation: Installation) -> dict[str, str]:
    """The installation's guidance by form key (`tier.high`); segments without any are absent."""
    return {
        f"{row.kind}.{row.value}": row.text
        for row in session.scalars(
            sa.select(SegmentGuidance).where(SegmentGuidance.installation_id == installation.id)
        )
    }


def save_guidance(
    session: Session, installation: Installation, texts: Mapping[str, str]
) -> dict[str, str]:
    """Store the guidance for every segment: an empty text removes it. Commits.

    `texts` is keyed like the form (`tier.high`); keys it lacks are left as they are. Raises
    InvalidForm, saving nothing, if any text is too long. Returns the texts now stored.
    """
    cleaned = {
        kind.key(value): clean_text(texts[kind.key(value)])
        for kind, value in guidance_keys()
        if kind.key(value) in texts
    }
    errors: dict[str, str] = {}
    for key, text in cleaned.items():
        check_length(errors, key, text, GUIDANCE_MAX)
    if errors:
        raise InvalidForm(errors)
    stored = {
        (row.kind, row.value): row
        for row in session.scalars(
            sa.select(SegmentGuidance).where(SegmentGuidance.installation_id == installation.id)
        )
    }
    for key, text in cleaned.items():
        kind, _, value = key.partition(".")
        row = stored.get((kind, value))
        if not text:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                SegmentGuidance(installation_id=installation.id, kind=kind, value=value, text=text)
            )
        elif row.text != text:
            row.text = text
    session.commit()
    return guidance_texts(session, installation)
