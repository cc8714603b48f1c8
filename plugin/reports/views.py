"""The console's reports section: the action log and account reviews over a date range.

`GET /console/reports` renders the last 30 days; `POST /console/reports` renders the range the
form asks for (400 with a message beside each wrong date); `GET /console/reports.csv?from=&to=`
answers the same report as a CSV download. All need the console's bearer session (supervisors
and admins), so the page downloads the CSV with fetch and hands the browser a Blob through a
temporary object URL (console.js's `data-download` buttons): the session never goes in a URL,
where logs and browser history would keep it, and no second kind of credential is needed.

The chart (cost against budget per segment) is SVG drawn here from the report's numbers, with
a title, a description and the table beside it as its text alternative: no script, no library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.console.views import ConsoleRefused, console_installation, console_refused
from plugin.domain.exceptions import money
from plugin.reports import service as reports
from plugin.reports.service import InvalidPeriod, Period, Report

bp = Blueprint("console_reports", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

# The chart's geometry, in SVG user units (it scales to the section's width).
CHART_WIDTH = 640
LABEL_WIDTH = 170
VALUE_WIDTH = 150
ROW_HEIGHT = 30
BAR_HEIGHT = 14


@dataclass(frozen=True)
class ChartBar:
    """One segment's row in the chart: its budget as a track, the spend as a bar over it."""

    label: str
    y: int
    budget_width: float
    spent_width: float
    over: bool
    value: str


@dataclass(frozen=True)
class BudgetChart:
    width: int
    height: int
    label_width: int
    bars: tuple[ChartBar, ...]
    summary: str


@bp.get("/reports")
def report() -> ResponseReturnValue:
    """Render the report for the last 30 days."""
    installation = console_installation()
    period = reports.parse_period(None, None, today=utcnow().date())
    return _render(reports.build_report(db.session(), installation, period))


@bp.post("/reports")
def run_report() -> ResponseReturnValue:
    """Render the report for the range the form gives."""
    installation = console_installation()
    raw_from, raw_to = request.form.get("from", ""), request.form.get("to", "")
    try:
        period = reports.parse_period(raw_from, raw_to, today=utcnow().date())
    except InvalidPeriod as invalid:
        fallback = reports.parse_period(None, None, today=utcnow().date())
        return _render(
            reports.build_report(db.session(), installation, fallback),
            errors=invalid.errors,
            typed={"from": raw_from, "to": raw_to},
            status_code=400,
        )
    return _render(reports.build_report(db.session(), installation, period))


@bp.get("/reports.csv")
def export_csv() -> ResponseReturnValue:
    """The report for `from`..`to` as a CSV download."""
    installation = console_installation()
    try:
        period = reports.parse_period(
            request.args.get("from"), request.args.get("to"), today=utcnow().date()
        )
    except InvalidPeriod as invalid:
        return Response(str(invalid), status=400, mimetype="text/plain")
    built = reports.build_report(db.session(), installation, period)
    return Response(
        reports.report_csv(built),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{reports.csv_filename(built)}"',
            "Cache-Control": "no-store",
        },
    )


def _render(
    built: Report,
    *,
    errors: Mapping[str, str] | None = None,
    typed: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_reports.html",
        report=built,
        chart=budget_chart(built),
        errors=errors or {},
        typed=typed or {},
        csv_url=_csv_url(built.period),
        csv_filename=reports.csv_filename(built),
        amount=lambda cents: reports.money_of(built, cents),
        percent=_percent,
    ), status_code


def _csv_url(period: Period) -> str:
    query = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    return url_for("console_reports.export_csv") + "?" + urlencode(query)


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{round(share * 100)}%"


def budget_chart(built: Report) -> BudgetChart:
    """Bars of spend against each budget for the range, on one scale so they compare."""
    lines = [b for b in built.budgets if b.budget_cents or b.spent_cents]
    scale_cents = max([max(b.budget_cents or 0, b.spent_cents) for b in lines] + [1])
    track = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = tuple(
        ChartBar(
            label=line.segment.label,
            y=index * ROW_HEIGHT,
            budget_width=round(track * (line.budget_cents or 0) / scale_cents, 1),
            spent_width=round(track * line.spent_cents / scale_cents, 1),
            over=line.budget_cents is not None and line.spent_cents > line.budget_cents,
            value=(
                f"{money(line.spent_cents, built.currency)} of "
                f"{money(line.budget_cents, built.currency)}"
                if line.budget_cents is not None
                else f"{money(line.spent_cents, built.currency)}, no budget"
            ),
        )
        for index, line in enumerate(lines)
    )
    over = [bar.label for bar in bars if bar.over]
    summary = (
        f"{len(bars)} segments. Over budget: {', '.join(over)}."
        if over
        else f"{len(bars)} segments, none over budget."
    )
    return BudgetChart(
        width=CHART_WIDTH,
        height=max(ROW_HEIGHT, len(bars) * ROW_HEIGHT),
        label_width=LABEL_WIDTH,
        bars=bars,
        summary=summary,
    )
