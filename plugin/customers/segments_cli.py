"""`flask segments`: recompute an installation's segments and suggest its tier thresholds."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.customers import progress, tier_settings
from plugin.customers.segmentation import recompute_installation
from plugin.domain.exceptions import whole_units
from plugin.helpdesks.installations import RegistrationError, installation_named
from plugin.models import Installation

segments_cli = AppGroup("segments", help="Customer segments: recompute, tier thresholds.")


def _installation(session: Session, name: str) -> Installation:
    try:
        return installation_named(session, name)
    except RegistrationError as error:
        raise click.UsageError(str(error)) from None


@segments_cli.command("recompute")
@click.option("--installation", "name", required=True, help="account or platform:account")
def recompute_command(name: str) -> None:
    """Measure the customer base, profile every customer, rebuild order facts (run nightly).

    A customer whose stored rows were derived from the same orders, rules and cut points on
    the same day (their stamp) is kept as is: those rows are what profiling would write.

    Progress goes to stderr.
    """
    with db.database().sessions() as session:
        installation = _installation(session, name)
        meter = progress.Meter("profiling customers")
        report = recompute_installation(
            session,
            installation,
            now=utcnow(),
            on_progress=lambda done, total: meter.update(done, total=total),
        )
        meter.done(report.customers)
    bases = "fixed bands" if report.buyers == 0 else f"quintiles of {report.buyers} buyers"
    # Customers whose stamped rows still held were kept, not profiled again (derived_stamp).
    kept = report.customers - report.rebuilt
    unchanged = f" ({kept} already up to date, kept)" if kept else ""
    click.echo(
        f"Profiled {report.rebuilt} of {report.customers} customers{unchanged} in "
        f"{report.seconds:.1f} s; RFM from {bases}."
    )


@segments_cli.command("suggest-tiers")
@click.option("--installation", "name", required=True, help="account or platform:account")
@click.option("--apply", is_flag=True, help="Store the suggestion as the installation's bars.")
def suggest_tiers_command(name: str, apply: bool) -> None:
    """Suggest value-tier thresholds from the installation's own customers' last 12 months."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        suggestion = tier_settings.suggest_tiers(session, installation.id, now=utcnow())
        bars, currency = suggestion.thresholds, installation.currency
        click.echo(
            f"From {suggestion.buyers} customers who bought in the last 12 months:\n"
            f"Medium: {bars.medium_min_orders}+ orders or "
            f"{whole_units(bars.medium_min_spend_cents):,}+ {currency} a year\n"
            f"High:   {bars.high_min_orders}+ orders and "
            f"{whole_units(bars.high_min_spend_cents):,}+ {currency} a year"
        )
        if apply:
            tier_settings.apply_tier_thresholds(installation, bars)
            session.commit()
            click.echo("Applied. Run `flask segments recompute` to profile customers with them.")
