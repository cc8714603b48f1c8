"""A rule exposure row for tests, with the fields no test cares about filled in."""

from __future__ import annotations

from datetime import datetime

from plugin.models import RuleExposure


def exposure(
    installation_id: int,
    rule_id: int,
    ticket_id: str,
    *,
    requester_id: str,
    seen_at: datetime,
    **changes: object,
) -> RuleExposure:
    """A shown goodwill credit of $9 to a high-value customer, unless `changes` say otherwise."""
    fields: dict[str, object] = {
        "rule_version": 1,
        "segment": "high",
        "held_out": False,
        "exception_key": "goodwill_credit",
        "cost_cents": 900,
    } | changes
    return RuleExposure(
        installation_id=installation_id,
        ticket_id=ticket_id,
        rule_id=rule_id,
        requester_id=requester_id,
        seen_at=seen_at,
        **fields,
    )
