"""The console's effects section: did each rule pay? Treated against held out, with intervals.

`GET /console/effects` renders the last year; `POST /console/effects` the range the form asks
for (400 with a message beside each wrong date); `GET /console/effects.csv?from=&to=` answers
the same report as a CSV download (console.js's `data-download`, as the reports section's).
Supervisors and admins, through the console's bearer session, as every console section.

The chart is SVG drawn here: per rule, each rate's difference as a dot with its 95 % interval
as a whisker about a zero line; its title, description and the table beside it are its text.
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
from plugin.domain.effects import MIN_SAMPLE, Comparison
from plugin.domain.exceptions import money
from plugin.reports import effects
from plugin.reports.effects import EffectsReport, RuleEffect
from plugin.reports.service import InvalidPeriod, Period, parse_period

bp = Blueprint("console_effects", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

CHART_WIDTH = 640
LABEL_WIDTH = 230
VALUE_WIDTH = 110
ROW_HEIGHT = 28
AXIS_HEIGHT = 22


@dataclass(frozen=True)
class ChartRow:
    label: str
    y: int
    dot_x: float
    low_x: float
    high_x: float
    significant: bool
    value: str


@dataclass(frozen=True)
class EffectChart:
    width: int
    height: int
    zero_x: float
    plot_left: int
    plot_right: int
    rows: tuple[ChartRow, ...]
    scale_label: str
    summary: str


@bp.get("/effects")
def report() -> ResponseReturnValue:
    """Render the effects of the last year."""
    installation = console_installation()
    period = effects.default_period(utcnow().date())
    return _render(effects.build_effects(db.session(), installation, period))


@bp.post("/effects")
def run_report() -> ResponseReturnValue:
    """Render the effects for the range the form gives."""
    installation = console_installation()
    raw_from, raw_to = request.form.get("from", ""), request.form.get("to", "")
    try:
        period = _period(raw_from, raw_to)
    except InvalidPeriod as invalid:
        fallback = effects.default_period(utcnow().date())
        return _render(
            effects.build_effects(db.session(), installation, fallback),
            errors=invalid.errors,
            typed={"from": raw_from, "to": raw_to},
            status_code=400,
        )
    return _render(effects.build_effects(db.session(), installation, period))


@bp.get("/effects.csv")
def export_csv() -> ResponseReturnValue:
    """The effects for `from`..`to` as a CSV download."""
    installation = console_installation()
    try:
        period = _period(request.args.get("from"), request.args.get("to"))
    except InvalidPeriod as invalid:
        return Response(str(invalid), status=400, mimetype="text/plain")
    built = effects.build_effects(db.session(), installation, period)
    return Response(
        effects.effects_csv(built),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{effects.csv_filename(built)}"',
            "Cache-Control": "no-store",
        },
    )


def _period(raw_from: str | None, raw_to: str | None) -> Period:
    """The range typed; blank means the last year."""
    today = utcnow().date()
    if not (raw_from or "").strip() and not (raw_to or "").strip():
        return effects.default_period(today)
    return parse_period(raw_from, raw_to, today=today)


def _render(
    built: EffectsReport,
    *,
    errors: Mapping[str, str] | None = None,
    typed: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    query = {"from": built.period.first.isoformat(), "to": built.period.last.isoformat()}
    return render_template(
        "console/_effects.html",
        report=built,
        charts={rule.rule_id: effect_chart(rule) for rule in built.rules},
        errors=errors or {},
        typed=typed or {},
        csv_url=url_for("console_effects.export_csv") + "?" + urlencode(query),
        csv_filename=effects.csv_filename(built),
        shown=lambda comparison, is_money: _shown(comparison, is_money, built.currency),
        difference=lambda comparison, is_money: _difference(comparison, is_money, built.currency),
        amount=lambda cents: "—" if cents is None else money(round(cents), built.currency),
        min_sample=MIN_SAMPLE,
    ), status_code


def _shown(comparison: Comparison, is_money: bool, currency: str) -> tuple[str, str]:
    def one(value: float | None) -> str:
        if value is None:
            return "—"
        return money(round(value), currency) if is_money else f"{value * 100:.1f}%"

    return one(comparison.treated), one(comparison.control)


def _difference(comparison: Comparison, is_money: bool, currency: str) -> str:
    """ "+8.2 points (2.1 to 14.3)", "+$4.10 ($0.80 to $7.40)"; the shortfall without one."""
    interval, diff = comparison.interval, comparison.difference
    if interval is None or diff is None:
        return comparison.shortfall or "not enough data yet"
    if is_money:
        sign = "+" if diff >= 0 else "-"
        return (
            f"{sign}{money(round(abs(diff)), currency)} "
            f"({_signed_money(interval.low, currency)} to {_signed_money(interval.high, currency)})"
        )
    return f"{diff * 100:+.1f} points ({interval.low * 100:+.1f} to {interval.high * 100:+.1f})"


def _signed_money(cents: float, currency: str) -> str:
    return ("-" if cents < 0 else "") + money(round(abs(cents)), currency)


def effect_chart(rule: RuleEffect) -> EffectChart:
    """The rates' differences (percentage points) with their intervals, on one scale."""
    lines = [
        line
        for line in rule.overall.lines
        if not line.outcome.is_money and line.comparison.interval is not None
    ]
    bound = max(
        [0.05]
        + [
            max(abs(line.comparison.interval.low), abs(line.comparison.interval.high))
            for line in lines
            if line.comparison.interval is not None
        ]
    )
    left, right = LABEL_WIDTH, CHART_WIDTH - VALUE_WIDTH
    zero = (left + right) / 2

    def x(value: float) -> float:
        return round(zero + (right - left) / 2 * value / bound, 1)

    rows = []
    for index, line in enumerate(lines):
        c = line.comparison
        assert c.interval is not None and c.difference is not None
        rows.append(
            ChartRow(
                label=line.outcome.label,
                y=AXIS_HEIGHT + index * ROW_HEIGHT,
                dot_x=x(c.difference),
                low_x=x(c.interval.low),
                high_x=x(c.interval.high),
                significant=c.significant,
                value=f"{c.difference * 100:+.1f} pts",
            )
        )
    clear = [row.label for row in rows if row.significant]
    summary = (
        f"{len(rows)} outcomes with enough data. Intervals that leave out zero: "
        + (", ".join(clear) if clear else "none")
        + "."
    )
    return EffectChart(
        width=CHART_WIDTH,
        height=AXIS_HEIGHT + max(1, len(rows)) * ROW_HEIGHT,
        zero_x=zero,
        plot_left=left,
        plot_right=right,
        rows=tuple(rows),
        scale_label=f"±{bound * 100:.0f} points",
        summary=summary,
    )
