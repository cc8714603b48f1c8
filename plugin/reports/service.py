"""Reports over the action log for a date range: what was granted and refused, what it cost
against the budgets, how account reviews went, and who did what.

No Flask here: the console (`plugin/reports/views.py`) renders a `Report` and exports it
as CSV. Every query is scoped to one installation and reads grouped counts, never one row per
action, so a year of a busy installation's log is a few hundred rows to add up.

What is counted, and why:

- Offered: the sidebar does not record which suggestions it showed (recording every view would
  cost a write per ticket view for a figure nobody acts on), so the reports count the
  suggestions agents *acted on*: applied, escalated or dismissed. Approved and refused are
  the supervisor's decisions on escalated ones, and are not counted as acted on again.
- Applied: applied by the agent, plus escalations a supervisor approved; cost is the sum of
  their amounts. Refused escalations cost nothing.
- Per segment: the customer's value tier as segmentation last stored it (a customer who moved
  tier since is counted in the new one); the segment each grant was charged to is in the
  budgets table instead, as it was when the grant was made.
- Cost against budget: each budget's monthly amount prorated to the days of the range in each
  month (a 15-day range in a 30-day month gets half), against the grants charged to it.
- Reviews: due is the reviews the sidebar started in the range (a customer whose segment called
  for one opened a ticket); completed is those whose required items are all checked now.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.exceptions import SegmentRef, money
from plugin.domain.field_errors import FieldErrors
from plugin.goodwill import rulebook
from plugin.goodwill.action_log import EXCEPTION_KINDS, ActionKind
from plugin.models import (
    AccountReview,
    Action,
    CustomerSegment,
    Installation,
    ReviewTemplate,
    SegmentBudget,
)
from plugin.reviews.actions import REVIEW_KINDS, ReviewActionKind
from plugin.reviews.tickets import agent_names

DEFAULT_DAYS = 30
MAX_DAYS = 731
NOT_A_CUSTOMER = "not a customer"
NO_RULE = "(no rule)"
# Spreadsheet programs run cells that begin with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class InvalidPeriod(FieldErrors):
    """A date range that does not validate: a message per field (`from`, `to`)."""


@dataclass(frozen=True)
class Period:
    """From the start of `first` to the end of `last`, UTC days, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time())

    @property
    def end(self) -> datetime:
        """The first moment after the range."""
        return datetime.combine(self.last + timedelta(days=1), time())

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def month_shares(self) -> Iterable[float]:
        """For each calendar month the range touches, the share of that month's days it covers."""
        day = self.first
        while day <= self.last:
            in_month = calendar.monthrange(day.year, day.month)[1]
            month_end = date(day.year, day.month, in_month)
            covered = (min(month_end, self.last) - day).days + 1
            yield covered / in_month
            day = month_end + timedelta(days=1)


def parse_period(raw_from: str | None, raw_to: str | None, *, today: date) -> Period:
    """Read the range a form sent (ISO dates); blank means the last 30 days up to today."""
    errors: dict[str, str] = {}
    last = _date(raw_to, "to", errors) or today
    first = _date(raw_from, "from", errors) or (last - timedelta(days=DEFAULT_DAYS - 1))
    if not errors:
        if first > last:
            errors["to"] = "must be on or after the start date"
        elif (last - first).days + 1 > MAX_DAYS:
            errors["from"] = f"a report covers at most {MAX_DAYS} days"
    if errors:
        raise InvalidPeriod(errors)
    return Period(first, last)


def _date(raw: str | None, name: str, errors: dict[str, str]) -> date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = "expected a date such as 2026-11-01"
        return None


@dataclass
class Tally:
    """What agents did about the suggestions in one group (a rule, an exception, a tier ...)."""

    applied: int = 0
    escalated: int = 0
    approved: int = 0
    refused: int = 0
    dismissed: int = 0
    cost_cents: int = 0
    dismissed_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def acted_on(self) -> int:
        return self.applied + self.escalated + self.dismissed

    @property
    def granted(self) -> int:
        return self.applied + self.approved

    @property
    def grant_rate(self) -> float | None:
        """Granted of acted on, 0..1; None when nothing was acted on."""
        return self.granted / self.acted_on if self.acted_on else None

    def add(self, kind: str, count: int, cents: int, reason: str | None) -> None:
        match kind:
            case ActionKind.APPLIED:
                self.applied += count
                self.cost_cents += cents
            case ActionKind.APPROVED:
                self.approved += count
                self.cost_cents += cents
            case ActionKind.ESCALATED:
                self.escalated += count
            case ActionKind.REFUSED:
                self.refused += count
            case ActionKind.DISMISSED:
                self.dismissed += count
                self.dismissed_by_reason[reason or "no reason"] += count


@dataclass(frozen=True)
class Line:
    """One row of a table: what it is about, and the tally."""

    key: str
    label: str
    tally: Tally


@dataclass(frozen=True)
class BudgetLine:
    """A segment's budget for the range against what was granted on it."""

    segment: SegmentRef
    spent_cents: int
    budget_cents: int | None
    grants: int

    @property
    def share(self) -> float | None:
        if not self.budget_cents:
            return None
        return self.spent_cents / self.budget_cents


@dataclass(frozen=True)
class ReviewLine:
    template: str
    due: int
    completed: int

    @property
    def rate(self) -> float | None:
        return self.completed / self.due if self.due else None


@dataclass
class AgentLine:
    agent_id: str
    name: str
    tally: Tally = field(default_factory=Tally)
    items_checked: int = 0
    reviews_completed: int = 0
    # Actions whose agent nothing signed (Freshdesk's page names its own): "agent not verified".
    unverified: int = 0


@dataclass(frozen=True)
class Report:
    """Everything the console's report shows for a range, in one installation's currency."""

    period: Period
    currency: str
    total: Tally
    by_tier: tuple[Line, ...]
    by_rule: tuple[Line, ...]
    by_exception: tuple[Line, ...]
    budgets: tuple[BudgetLine, ...]
    reviews: tuple[ReviewLine, ...]
    agents: tuple[AgentLine, ...]
    reason_labels: Mapping[str, str]

    @property
    def reviews_due(self) -> int:
        return sum(line.due for line in self.reviews)

    @property
    def reviews_completed(self) -> int:
        return sum(line.completed for line in self.reviews)


def build_report(session: Session, installation: Installation, period: Period) -> Report:
    """Add up the installation's action log and reviews over the range."""
    book = rulebook.rule_book(session, installation)
    rule_names = {
        rule.id: str(version.definition.get("name") or rule.key)
        for rule, version in rulebook.current_rules(session, installation.id)
    }
    reason_labels = {
        reason.code: reason.label
        for entry in book.catalog.values()
        for reason in (*entry.apply_reasons, *entry.dismiss_reasons)
    }
    in_range = (
        Action.installation_id == installation.id,
        Action.created_at >= period.start,
        Action.created_at < period.end,
        Action.undone_at.is_(None),  # taken back within the undo window: never happened
    )
    total = Tally()
    tiers: dict[str, Tally] = defaultdict(Tally)
    rules: dict[str, Tally] = defaultdict(Tally)
    exceptions: dict[str, Tally] = defaultdict(Tally)
    agents: dict[str, AgentLine] = {}
    spent: Counter[tuple[str, str]] = Counter()
    grants: Counter[tuple[str, str]] = Counter()
    grouped = session.execute(
        sa.select(
            Action.kind,
            Action.exception_key,
            Action.rule_id,
            Action.reason_code,
            Action.agent_id,
            Action.budget_field,
            Action.budget_value,
            CustomerSegment.tier,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(Action.amount_cents), 0),
        )
        .outerjoin(CustomerSegment, CustomerSegment.customer_id == Action.customer_id)
        # Ticket handling grants nothing and is about no exception: not tallied here.
        .where(*in_range, Action.kind.in_(EXCEPTION_KINDS))
        .group_by(
            Action.kind,
            Action.exception_key,
            Action.rule_id,
            Action.reason_code,
            Action.agent_id,
            Action.budget_field,
            Action.budget_value,
            CustomerSegment.tier,
        )
    )
    for kind, key, rule_id, reason, agent, b_field, b_value, tier, count, cents in grouped:
        cents = int(cents or 0)
        for tally in (
            total,
            tiers[tier or NOT_A_CUSTOMER],
            rules[rule_names.get(rule_id, NO_RULE) if rule_id else NO_RULE],
            exceptions[key],
            _agent(agents, agent).tally,
        ):
            tally.add(kind, count, cents, reason)
        if kind in (ActionKind.APPLIED, ActionKind.APPROVED) and b_field and b_value:
            spent[(b_field, b_value)] += cents
            grants[(b_field, b_value)] += count
    for agent, kind, count in session.execute(
        sa.select(Action.agent_id, Action.kind, sa.func.count())
        .where(*in_range, Action.kind.in_(REVIEW_KINDS))
        .group_by(Action.agent_id, Action.kind)
    ):
        line = _agent(agents, agent)
        if kind == ReviewActionKind.CHECKED:
            line.items_checked += count
        elif kind == ReviewActionKind.COMPLETED:
            line.reviews_completed += count
    for agent, count in session.execute(
        sa.select(Action.agent_id, sa.func.count())
        .where(*in_range, Action.agent_verified.is_(False))
        .group_by(Action.agent_id)
    ):
        _agent(agents, agent).unverified += count
    names = agent_names(session, installation, agents)
    for agent_id, line in agents.items():
        line.name = names.get(agent_id, line.name)
    catalog = book.catalog
    return Report(
        period=period,
        currency=installation.currency,
        total=total,
        by_tier=_lines(tiers, lambda key: key.replace("_", " ").capitalize()),
        by_rule=_lines(rules, lambda key: key),
        by_exception=_lines(exceptions, lambda key: catalog[key].name if key in catalog else key),
        budgets=_budgets(session, installation.id, period, spent, grants),
        reviews=_reviews(session, installation.id, period),
        agents=tuple(sorted(agents.values(), key=lambda a: (a.name.casefold(), a.agent_id))),
        reason_labels=reason_labels,
    )


def _agent(agents: dict[str, AgentLine], agent_id: str | None) -> AgentLine:
    key = agent_id or ""
    if key not in agents:
        agents[key] = AgentLine(key, f"agent {key}" if key else "(no agent recorded)")
    return agents[key]


def _lines(groups: Mapping[str, Tally], label: Callable[[str], str]) -> tuple[Line, ...]:
    lines = [Line(key, label(key), tally) for key, tally in groups.items()]
    return tuple(sorted(lines, key=lambda line: (-line.tally.acted_on, line.label.casefold())))


def _budgets(
    session: Session,
    installation_id: int,
    period: Period,
    spent: Mapping[tuple[str, str], int],
    grants: Mapping[tuple[str, str], int],
) -> tuple[BudgetLine, ...]:
    shares = list(period.month_shares())
    monthly = {
        (row.field, row.value): row.monthly_cents
        for row in session.scalars(
            sa.select(SegmentBudget).where(SegmentBudget.installation_id == installation_id)
        )
    }
    lines = [
        BudgetLine(
            segment=SegmentRef(b_field, b_value),
            spent_cents=spent.get((b_field, b_value), 0),
            budget_cents=round(sum(shares) * monthly[(b_field, b_value)])
            if (b_field, b_value) in monthly
            else None,
            grants=grants.get((b_field, b_value), 0),
        )
        for b_field, b_value in sorted(set(monthly) | set(spent))
    ]
    return tuple(lines)


def _reviews(session: Session, installation_id: int, period: Period) -> tuple[ReviewLine, ...]:
    rows = session.execute(
        sa.select(
            ReviewTemplate.name,
            sa.func.count(AccountReview.id),
            sa.func.count(AccountReview.completed_at),
        )
        .join(ReviewTemplate, ReviewTemplate.id == AccountReview.template_id)
        .where(
            AccountReview.installation_id == installation_id,
            AccountReview.started_at >= period.start,
            AccountReview.started_at < period.end,
        )
        .group_by(ReviewTemplate.name)
        .order_by(ReviewTemplate.name)
    )
    return tuple(ReviewLine(name, due, completed) for name, due, completed in rows)


# CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "section",
    "name",
    "acted_on",
    "applied",
    "escalated",
    "approved",
    "refused",
    "dismissed",
    "dismissed_by_reason",
    "cost",
    "budget",
    "reviews_due",
    "reviews_completed",
    "items_checked",
    # Agent rows: how many of the agent's actions nothing signed the agent of (Freshdesk app).
    "agent_not_verified",
)


def report_csv(report: Report) -> str:
    """The report as one CSV table, a row per line of each section; amounts in units."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()

    def units(cents: int | None) -> str:
        return "" if cents is None else f"{cents / 100:.2f}"

    def cells(tally: Tally) -> dict[str, str]:
        reasons = "; ".join(
            f"{report.reason_labels.get(code, code)}: {count}"
            for code, count in tally.dismissed_by_reason.most_common()
        )
        return {
            "acted_on": str(tally.acted_on),
            "applied": str(tally.applied),
            "escalated": str(tally.escalated),
            "approved": str(tally.approved),
            "refused": str(tally.refused),
            "dismissed": str(tally.dismissed),
            "dismissed_by_reason": reasons,
            "cost": units(tally.cost_cents),
        }

    rows: list[dict[str, str]] = [{"section": "total", "name": "all", **cells(report.total)}]
    for section, lines in (
        ("tier", report.by_tier),
        ("rule", report.by_rule),
        ("exception", report.by_exception),
    ):
        rows += [{"section": section, "name": line.label, **cells(line.tally)} for line in lines]
    rows += [
        {
            "section": "budget",
            "name": budget.segment.label,
            "applied": str(budget.grants),
            "cost": units(budget.spent_cents),
            "budget": units(budget.budget_cents),
        }
        for budget in report.budgets
    ]
    rows += [
        {
            "section": "review",
            "name": line.template,
            "reviews_due": str(line.due),
            "reviews_completed": str(line.completed),
        }
        for line in report.reviews
    ]
    rows += [
        {
            "section": "agent",
            "name": agent.name,
            **cells(agent.tally),
            "reviews_completed": str(agent.reviews_completed),
            "items_checked": str(agent.items_checked),
            "agent_not_verified": str(agent.unverified),
        }
        for agent in report.agents
    ]
    writer.writerows({key: _safe(value) for key, value in row.items()} for row in rows)
    return out.getvalue()


def _safe(cell: str) -> str:
    """Keep a name a supervisor typed from running as a formula in a spreadsheet."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_filename(report: Report) -> str:
    return (
        f"regulars-report-{report.period.first.isoformat()}-to-{report.period.last.isoformat()}.csv"
    )


def money_of(report: Report, cents: int | None) -> str:
    """An amount in the report's currency, for templates: "$1,234"."""
    return "—" if cents is None else money(cents, report.currency)
