"""The effects report: per rule and per segment, what customers did after its suggestion was
shown against held out, each outcome's difference with a 95 % interval, and a CSV of it.

No Flask here (`plugin/reports/effects_views.py` renders it). One grouped query per report over
the installation's exposures in the range; the statistics are `plugin.domain.effects`'.

- A rule with a holdout compares every eligible ticket it was shown on (whatever the agent did)
  with the tickets it was held out from: the groups differ only by the suggestion, so the
  difference is the suggestion's effect.
- A rule without one compares the tickets where an agent applied it with those where an agent
  dismissed it. Agents choose, so that difference is not causal, and is labelled so.
- Each requester counts once per rule, at their first eligible ticket (`_first_for_requester`).
- Cost per extra retained customer: what the rule granted per treated ticket, over the extra
  share of customers who ordered again within 90 days.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.effects import (
    Comparison,
    Sample,
    compare_means,
    compare_proportions,
    cost_per_extra_customer,
)
from plugin.goodwill.action_log import ActionKind
from plugin.models import Action, Installation, Rule, RuleExposure, RuleVersion
from plugin.reports.service import Period

DEFAULT_DAYS = 365
ALL_SEGMENTS = ""
NOT_A_CUSTOMER = "not a customer"
# Spreadsheet programs run cells that begin with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Outcome:
    key: str  # the RuleExposure column
    label: str
    is_money: bool = False
    lower_is_better: bool = False


OUTCOMES = (
    Outcome("repeat_contact_7d", "Contacted again within 7 days", lower_is_better=True),
    Outcome("satisfied", "Satisfied (helpdesk rating)"),
    Outcome("ordered_30d", "Ordered within 30 days"),
    Outcome("ordered_90d", "Ordered within 90 days"),
    Outcome("spend_90d_cents", "Spend in 90 days", is_money=True),
    Outcome("lapsed_180d", "Lapsed: no order in 180 days", lower_is_better=True),
)
RETENTION = "ordered_90d"

# Which group an exposure falls in.
SHOWN, HELD_OUT, APPLIED, DISMISSED = "shown", "held_out", "applied", "dismissed"


def default_period(today: date) -> Period:
    """The last year: outcomes take up to 180 days to be known."""
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


@dataclass(frozen=True)
class OutcomeLine:
    outcome: Outcome
    comparison: Comparison


@dataclass(frozen=True)
class GroupEffect:
    """One rule's comparison among the customers of one segment (or all of them)."""

    segment: str  # ALL_SEGMENTS for every customer
    treated_n: int
    control_n: int
    lines: tuple[OutcomeLine, ...]
    granted_cents: int
    cost_per_extra_cents: float | None

    @property
    def label(self) -> str:
        return "All customers" if self.segment == ALL_SEGMENTS else self.segment

    def line(self, key: str) -> OutcomeLine:
        return next(line for line in self.lines if line.outcome.key == key)


@dataclass(frozen=True)
class RuleEffect:
    """A rule's effect: causal (holdout) or only an association (applied vs dismissed)."""

    rule_id: int
    key: str
    name: str
    holdout_percent: int
    causal: bool
    overall: GroupEffect
    segments: tuple[GroupEffect, ...]

    @property
    def treated_label(self) -> str:
        return "Shown" if self.causal else "Applied"

    @property
    def control_label(self) -> str:
        return "Held out" if self.causal else "Dismissed"


@dataclass(frozen=True)
class EffectsReport:
    period: Period
    currency: str
    rules: tuple[RuleEffect, ...]


@dataclass
class _Sums:
    """One group's sums as the query gives them: per outcome, (count known, sum, squares)."""

    samples: dict[str, Sample]
    granted_cents: int = 0

    @classmethod
    def empty(cls) -> _Sums:
        return cls({outcome.key: Sample() for outcome in OUTCOMES})

    def add(self, other: _Sums) -> None:
        for key, sample in other.samples.items():
            mine = self.samples[key]
            self.samples[key] = Sample(
                mine.n + sample.n, mine.total + sample.total, mine.squares + sample.squares
            )
        self.granted_cents += other.granted_cents


def _group_column(installation_id: int) -> Any:
    """Each exposure's group: held out, shown; for comparisons without a holdout, whether an
    agent applied or dismissed the rule's suggestion on the ticket.
    """
    e = RuleExposure.__table__.c
    a = Action.__table__.c

    def acted(kinds: Iterable[str]) -> Any:
        return sa.exists(
            sa.select(1)
            .select_from(Action.__table__)
            .where(
                a.installation_id == installation_id,
                a.ticket_id == e.ticket_id,
                a.rule_id == e.rule_id,
                a.kind.in_(tuple(kinds)),
                a.undone_at.is_(None),
            )
        )

    return sa.case(
        (e.held_out, HELD_OUT),
        (acted((ActionKind.APPLIED, ActionKind.APPROVED)), APPLIED),
        (acted((ActionKind.DISMISSED,)), DISMISSED),
        else_=SHOWN,
    )


def _granted_column(installation_id: int) -> Any:
    """What the rule's suggestion granted on the exposure's ticket (0 when nothing)."""
    e = RuleExposure.__table__.c
    a = Action.__table__.c
    return (
        sa.select(sa.func.coalesce(sa.func.sum(a.amount_cents), 0))
        .where(
            a.installation_id == installation_id,
            a.ticket_id == e.ticket_id,
            a.rule_id == e.rule_id,
            a.kind.in_((ActionKind.APPLIED, ActionKind.APPROVED)),
            a.undone_at.is_(None),
        )
        .scalar_subquery()
    )


def _first_for_requester() -> Any:
    """Only a requester's first eligible ticket under each rule counts.

    One customer's tickets are not independent, and a gesture granted on the first can keep a
    shown customer from being eligible again (a cap) where a held-out one stays eligible: the
    groups would then differ by more than the suggestion.
    """
    e = RuleExposure.__table__.c
    earlier = RuleExposure.__table__.alias("earlier")
    return ~sa.exists(
        sa.select(1)
        .select_from(earlier)
        .where(
            earlier.c.installation_id == e.installation_id,
            earlier.c.rule_id == e.rule_id,
            earlier.c.requester_id == e.requester_id,
            sa.or_(
                earlier.c.seen_at < e.seen_at,
                sa.and_(earlier.c.seen_at == e.seen_at, earlier.c.id < e.id),
            ),
        )
    )


def _sums(
    session: Session, installation_id: int, period: Period
) -> dict[tuple[int, str, str], _Sums]:
    """The sums of every outcome by rule, segment and group, in one grouped query."""
    e = RuleExposure.__table__.c
    group = _group_column(installation_id).label("arm")
    columns: list[Any] = [e.rule_id, e.segment, group]
    for outcome in OUTCOMES:
        value = e[outcome.key] if outcome.is_money else sa.cast(e[outcome.key], sa.Integer)
        columns += [sa.func.count(e[outcome.key]), sa.func.sum(value)]
        columns.append(sa.func.sum(value * value) if outcome.is_money else sa.func.sum(value))
    columns.append(sa.func.sum(_granted_column(installation_id)))
    inner = (
        sa.select(*columns)
        .where(
            e.installation_id == installation_id,
            e.seen_at >= period.start,
            e.seen_at < period.end,
            _first_for_requester(),
        )
        .group_by(e.rule_id, e.segment, group)
    )
    found: dict[tuple[int, str, str], _Sums] = {}
    for row in session.execute(inner):
        rule_id, segment, arm, *numbers = row
        sums = _Sums.empty()
        for index, outcome in enumerate(OUTCOMES):
            n, total, squares = numbers[index * 3 : index * 3 + 3]
            sums.samples[outcome.key] = Sample(int(n or 0), float(total or 0), float(squares or 0))
        sums.granted_cents = int(numbers[-1] or 0)
        found[(int(rule_id), segment or NOT_A_CUSTOMER, str(arm))] = sums
    return found


def _compare(segment: str, treated: _Sums, control: _Sums) -> GroupEffect:
    lines = tuple(
        OutcomeLine(
            outcome,
            (compare_means if outcome.is_money else compare_proportions)(
                treated.samples[outcome.key], control.samples[outcome.key]
            ),
        )
        for outcome in OUTCOMES
    )
    treated_n = max(s.n for s in treated.samples.values())
    control_n = max(s.n for s in control.samples.values())
    retention = next(line.comparison for line in lines if line.outcome.key == RETENTION)
    per_ticket = treated.granted_cents / treated_n if treated_n else 0.0
    return GroupEffect(
        segment=segment,
        treated_n=treated_n,
        control_n=control_n,
        lines=lines,
        granted_cents=treated.granted_cents,
        cost_per_extra_cents=cost_per_extra_customer(per_ticket, retention),
    )


def build_effects(session: Session, installation: Installation, period: Period) -> EffectsReport:
    """Every rule with exposures in the range, most exposures first, with its comparisons."""
    sums = _sums(session, installation.id, period)
    rule_ids = sorted({rule_id for rule_id, _, _ in sums})
    names: dict[int, tuple[str, str, int]] = {}
    if rule_ids:
        rows = session.execute(
            sa.select(Rule.id, Rule.key, RuleVersion.definition)
            .join(
                RuleVersion,
                sa.and_(
                    RuleVersion.rule_id == Rule.id, RuleVersion.version == Rule.current_version
                ),
            )
            .where(Rule.installation_id == installation.id, Rule.id.in_(rule_ids))
        )
        for rule_id, key, definition in rows:
            names[rule_id] = (
                key,
                str(definition.get("name", key)),
                int(definition.get("holdout_percent") or 0),
            )
    effects = []
    for rule_id in rule_ids:
        if rule_id not in names:
            continue
        key, name, holdout = names[rule_id]
        arms = {arm for (rid, _, arm) in sums if rid == rule_id}
        causal = HELD_OUT in arms
        treated_arms = (SHOWN, APPLIED, DISMISSED) if causal else (APPLIED,)
        control_arms = (HELD_OUT,) if causal else (DISMISSED,)
        segments = sorted({segment for (rid, segment, _) in sums if rid == rule_id})
        per_segment = []
        total_t, total_c = _Sums.empty(), _Sums.empty()
        for segment in segments:
            treated, control = _Sums.empty(), _Sums.empty()
            for arm in treated_arms:
                treated.add(sums.get((rule_id, segment, arm), _Sums.empty()))
            for arm in control_arms:
                control.add(sums.get((rule_id, segment, arm), _Sums.empty()))
            total_t.add(treated)
            total_c.add(control)
            per_segment.append(_compare(segment, treated, control))
        effects.append(
            RuleEffect(
                rule_id=rule_id,
                key=key,
                name=name,
                holdout_percent=holdout,
                causal=causal,
                overall=_compare(ALL_SEGMENTS, total_t, total_c),
                segments=tuple(per_segment),
            )
        )
    effects.sort(key=lambda r: (not r.causal, -(r.overall.treated_n + r.overall.control_n)))
    return EffectsReport(period, installation.currency, tuple(effects))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: float | None, is_money: bool) -> str:
    if value is None:
        return ""
    return f"{value / 100:.2f}" if is_money else f"{value:.4f}"


def effects_csv(report: EffectsReport) -> str:
    """One row per rule, segment and outcome: both groups, the difference and its interval."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "rule",
            "rule_name",
            "comparison",
            "segment",
            "outcome",
            "treated_n",
            "control_n",
            "treated",
            "control",
            "difference",
            "ci_low",
            "ci_high",
            "note",
            f"cost_per_extra_retained_customer_{report.currency}",
        ]
    )
    for rule in report.rules:
        comparison = "shown vs held out" if rule.causal else "applied vs dismissed (not causal)"
        for group in (rule.overall, *rule.segments):
            for line in group.lines:
                c, money = line.comparison, line.outcome.is_money
                writer.writerow(
                    [
                        _cell(rule.key),
                        _cell(rule.name),
                        comparison,
                        _cell(group.label),
                        line.outcome.key,
                        c.treated_n,
                        c.control_n,
                        _number(c.treated, money),
                        _number(c.control, money),
                        _number(c.difference, money),
                        _number(c.interval.low if c.interval else None, money),
                        _number(c.interval.high if c.interval else None, money),
                        c.shortfall,
                        _number(group.cost_per_extra_cents, True)
                        if line.outcome.key == RETENTION
                        else "",
                    ]
                )
    return out.getvalue()


def csv_filename(report: EffectsReport) -> str:
    period = report.period
    return f"regulars-effects-{period.first.isoformat()}-to-{period.last.isoformat()}.csv"
