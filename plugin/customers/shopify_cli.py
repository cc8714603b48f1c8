"""`flask data shopify`: connect an installation to a Shopify store, check it, sync a customer.

The access token never comes from the command line, where `ps` and shell history would show
it: it is read from SHOPIFY_ACCESS_TOKEN or a hidden prompt, and stored encrypted.
"""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import cli_support, db
from plugin.cli_support import MARKS, vault
from plugin.clock import utcnow
from plugin.customers.shopify import ShopifySyncError, sync_customer
from plugin.customers.shopify_client import MAX_PAGE_SIZE, RECENT_ORDERS, ShopifyError
from plugin.customers.shopify_connection import (
    check_shopify,
    connect_shopify,
    disconnect_shopify,
    shopify_client_for,
)
from plugin.helpdesks.credentials import CredentialsError
from plugin.helpdesks.http import AccountSessions, new_session
from plugin.helpdesks.installations import RegistrationError, installation_named
from plugin.models import Installation

# The name of an environment variable, not a secret.
ACCESS_TOKEN_VARIABLE = "SHOPIFY_ACCESS_TOKEN"  # noqa: S105

installation_option = click.option(
    "--installation",
    "name",
    required=True,
    help="The installation: its account (acme) or platform:account (zendesk:acme).",
)
timeout_option = cli_support.timeout_option("Shopify")


@click.group("shopify", cls=AppGroup)
def shopify_cli() -> None:
    """Read customers and orders from an installation's Shopify store."""


@shopify_cli.command("connect")
@installation_option
@click.option("--shop", required=True, help="The store: acme.myshopify.com (or acme).")
@click.option(
    "--api-base-url",
    default=None,
    help="Call this URL instead of https://SHOP (a proxy or a test fake).",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Check the connection after storing it.",
)
@timeout_option
def connect_command(
    name: str, shop: str, api_base_url: str | None, check: bool, timeout: float
) -> None:
    """Connect a Shopify store, or replace its token.

    The Admin API access token (of a custom app with read_customers and read_orders, and the
    scopes of the gestures it is to give: see the README's "Gestures in the shop") is read
    from SHOPIFY_ACCESS_TOKEN or a hidden prompt, never from an argument.
    """
    token = _read_token()
    with db.database().sessions() as session:
        installation = _installation(session, name)
        try:
            connection = connect_shopify(
                session,
                installation,
                vault(),
                shop=shop,
                access_token=token,
                api_base_url=api_base_url,
            )
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        session.commit()
        click.echo(f"Connected Shopify store {connection.shop} to {_label(installation)}.")
        if check:
            _run_check(installation, timeout=timeout)


@shopify_cli.command("check")
@installation_option
@timeout_option
def check_command(name: str, timeout: float) -> None:
    """Check the connection to the installation's store; exits non-zero when a check fails."""
    with db.database().sessions() as session:
        _run_check(_installation(session, name), timeout=timeout)


@shopify_cli.command("disconnect")
@installation_option
def disconnect_command(name: str) -> None:
    """Forget the installation's store and token; customers and orders already read stay."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        shop = installation.shopify_shop
        if not disconnect_shopify(session, installation):
            raise click.ClickException(f"{_label(installation)} has no Shopify store connected.")
        session.commit()
    click.echo(f"Disconnected Shopify store {shop} from {_label(installation)}.")


@shopify_cli.command("sync")
@installation_option
@click.option("--email", required=True, help="The customer's email address.")
@click.option(
    "--orders",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=RECENT_ORDERS,
    show_default=True,
    help="How many of the customer's latest orders to read.",
)
@timeout_option
def sync_command(name: str, email: str, orders: int, timeout: float) -> None:
    """Read one customer from the store and store them, their orders and Shopify's figures."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        accounts = AccountSessions()
        try:
            client = shopify_client_for(installation, vault(), accounts, timeout=timeout)
            if client is None:
                raise click.ClickException(
                    f"{_label(installation)} has no Shopify store connected: connect one with "
                    "`flask data shopify connect`."
                )
            found = client.customer_by_email(email, recent_orders=orders)
        except ValueError as error:
            raise click.UsageError(f"--email: {error}") from None
        except (CredentialsError, ShopifyError) as error:
            raise click.ClickException(str(error)) from None
        finally:
            accounts.close()
        if found is None:
            raise click.ClickException(f"{client.shop} has no customer with the email {email}.")
        try:
            customer_id = sync_customer(session, installation, found, now=utcnow())
        except ShopifySyncError as error:
            session.rollback()
            raise click.ClickException(f"{error}. Nothing was stored.") from None
        session.commit()
    click.echo(
        f"Synced {found.name} (customer {customer_id}): {len(found.orders)} recent orders read; "
        f"Shopify counts {found.number_of_orders} orders and "
        f"{found.amount_spent_cents / 100:.2f} {found.currency} spent."
    )


def _installation(session: Session, name: str) -> Installation:
    try:
        return installation_named(session, name)
    except RegistrationError as error:
        raise click.UsageError(str(error)) from None


def _label(installation: Installation) -> str:
    return f"installation {installation.platform}:{installation.account}"


def _read_token() -> str:
    token = os.environ.get(ACCESS_TOKEN_VARIABLE, "").strip()
    if token:
        return token
    # The answer is not echoed.
    answer: str = click.prompt(
        f"Shopify Admin API access token (or set {ACCESS_TOKEN_VARIABLE})", hide_input=True
    )
    if not answer.strip():
        raise click.UsageError("No Shopify access token given.")
    return answer.strip()


def _run_check(installation: Installation, *, timeout: float) -> None:
    try:
        with new_session() as http_session:
            report = check_shopify(
                installation, vault(), http_session=http_session, timeout=timeout
            )
    except CredentialsError as error:
        raise click.ClickException(str(error)) from None
    for check in report.checks:
        click.echo(f"{MARKS[check.status]} {check.name}: {check.message}")
    if not report.ok:
        click.echo(
            "Fix the problems above, then run `flask data shopify check --installation "
            f"{installation.platform}:{installation.account}`.",
            err=True,
        )
        raise click.exceptions.Exit(1)
