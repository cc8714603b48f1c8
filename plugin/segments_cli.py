"""`flask segments`: recompute an installation's segments and suggest its tier thresholds."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.domain.segments import suggest_tier_thresholds
from plugin.installations import RegistrationError, installation_named
from plugin.models import CustomerFact, Installation
from plugin.segmentation import recompute_installation
from plugin.sources import orders

segments_cli = AppGroup("segments", help="Customer segments: recompute, tier thresholds.")


def _installation(session: Session, name: str) -> Installation:
    try:
        return installation_named(session, name)
    except RegistrationError as error:
        raise click.UsageError(str(error)) from None


@segments_cli.command("recompute")
@click.option("--installation", "name", required=True, help="account or platform:account")
def recompute_command(name: str) -> None:
    """Measure the customer base and profile every customer (run it nightly)."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        report = recompute_installation(session, installation, now=utcnow())
    bases = "fixed bands" if report.buyers == 0 else f"quintiles of {report.buyers} buyers"
    click.echo(
        f"Profiled {report.customers} customers in {report.seconds:.1f} s; RFM from {bases}."
    )


@segments_cli.command("suggest-tiers")
@click.option("--installation", "name", required=True, help="account or platform:account")
@click.option("--apply", is_flag=True, help="Store the suggestion as the installation's bars.")
def suggest_tiers_command(name: str, apply: bool) -> None:
    """Suggest value-tier thresholds from the installation's own customers' last 12 months."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        values = session.execute(
            sa.select(CustomerFact.customer_id, CustomerFact.name, CustomerFact.value).where(
                CustomerFact.installation_id == installation.id,
                CustomerFact.source == orders.SOURCE,
                CustomerFact.name.in_(("orders_12m", "spend_12m_cents")),
            )
        )
        per_customer: dict[int, dict[str, int]] = {}
        for customer_id, fact, value in values:
            per_customer.setdefault(customer_id, {})[fact] = int(value)
        suggestion = suggest_tier_thresholds(
            (facts.get("orders_12m", 0), facts.get("spend_12m_cents", 0))
            for facts in per_customer.values()
        )
        click.echo(
            f"Medium: {suggestion.medium_min_orders}+ orders or "
            f"{suggestion.medium_min_spend_cents / 100:,.0f}+ {installation.currency} a year\n"
            f"High:   {suggestion.high_min_orders}+ orders and "
            f"{suggestion.high_min_spend_cents / 100:,.0f}+ {installation.currency} a year"
        )
        if apply:
            installation.tier_medium_min_orders = suggestion.medium_min_orders
            installation.tier_medium_min_spend_cents = suggestion.medium_min_spend_cents
            installation.tier_high_min_orders = suggestion.high_min_orders
            installation.tier_high_min_spend_cents = suggestion.high_min_spend_cents
            session.commit()
            click.echo("Applied. Run `flask segments recompute` to profile customers with them.")
