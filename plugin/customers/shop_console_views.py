"""The console's Shopify section (admins only): connect a store, check it, disconnect it.

The same service functions as `flask data shopify` (`plugin.customers.shopify_connection`):
the token is stored encrypted by `connect_shopify` and never shown again, only its last four
characters. Requests carry the console's bearer session, never a cookie (no CSRF to forge).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.console.roles import Need
from plugin.console.views import ConsoleRefused, console_installation, console_refused
from plugin.customers.shopify_connection import (
    CHECK_SHOP,
    CHECK_TOKEN,
    check_shopify,
    connect_shopify,
    disconnect_shopify,
    shopify_connection,
)
from plugin.domain.wording import N_
from plugin.helpdesks.credentials import CredentialsError
from plugin.helpdesks.http import new_session
from plugin.helpdesks.installations import CheckStatus, ConnectionReport, RegistrationError
from plugin.helpdesks.runtime import helpdesks
from plugin.models import Installation

bp = Blueprint("console_shop", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)

MAX_SHOP_LENGTH = 255
# Checks whose failure means the new token must not be kept: nothing could be read with it.
BLOCKING_CHECKS = (CHECK_SHOP, CHECK_TOKEN)


@bp.get("/shopify")
def shop_form() -> ResponseReturnValue:
    """Render the connected store (token shown by its last four characters) or the form."""
    return _page(console_installation(Need.ADMINISTER))


@bp.post("/shopify")
def connect() -> ResponseReturnValue:
    """Check the typed shop and token with Shopify; keep them (encrypted) only if it answers
    and accepts the token, then show the check's report."""
    installation = console_installation(Need.ADMINISTER)
    shop = request.form.get("shop", "")[:MAX_SHOP_LENGTH]
    session = db.session()
    try:
        connection = connect_shopify(
            session,
            installation,
            helpdesks().connections.vault,
            shop=shop,
            access_token=request.form.get("access_token", ""),
        )
    except RegistrationError as error:
        session.rollback()
        return _page(installation, typed_shop=shop, error=str(error), code=400)
    report = _check(installation)
    if report is None or _refused(report):
        # Nothing usable: the store and token the installation had stay as they were.
        session.rollback()
        return _page(
            installation,
            typed_shop=shop,
            error=f"Shopify did not accept the connection to {connection.shop}; nothing was "
            "saved. See the check below.",
            report=report,
            code=400,
        )
    session.commit()
    return _page(
        installation, status=N_("Connected %(shop)s.", shop=connection.shop), report=report
    )


@bp.post("/shopify/check")
def check() -> ResponseReturnValue:
    """Run the connection check of the installation's store now and show each step."""
    installation = console_installation(Need.ADMINISTER)
    if installation.shopify_shop is None:
        return _page(installation, error="No Shopify store is connected.", code=400)
    report = _check(installation)
    if report is None:
        return _page(installation, code=400)
    return _page(installation, report=report)


@bp.post("/shopify/disconnect")
def disconnect() -> ResponseReturnValue:
    """Forget the store and its token; customers and orders already read stay."""
    installation = console_installation(Need.ADMINISTER)
    shop = installation.shopify_shop
    if not disconnect_shopify(db.session(), installation):
        return _page(installation, error="No Shopify store is connected.", code=400)
    db.session().commit()
    return _page(
        installation,
        status=N_(
            "Disconnected %(shop)s. Customers and orders already read from it stay.", shop=shop
        ),
    )


def _check(installation: Installation) -> ConnectionReport | None:
    """The check's report, or None when the stored token cannot be read (said on the page)."""
    connections = helpdesks().connections
    try:
        with new_session() as http_session:
            return check_shopify(
                installation,
                connections.vault,
                http_session=http_session,
                timeout=connections.timeout,
            )
    except CredentialsError:
        return None


def _refused(report: ConnectionReport) -> bool:
    return any(
        check.name in BLOCKING_CHECKS and check.status is CheckStatus.FAILED
        for check in report.checks
    )


def _token_ending(installation: Installation) -> str | None:
    """The stored token's last four characters; None when none is stored or it is unreadable."""
    try:
        connection = shopify_connection(installation, helpdesks().connections.vault)
    except CredentialsError:
        return None
    return None if connection is None else connection.access_token[-4:]


def _page(
    installation: Installation,
    *,
    typed_shop: str = "",
    error: str | None = None,
    status: str | None = None,
    report: ConnectionReport | None = None,
    code: int = 200,
) -> tuple[str, int]:
    return render_template(
        "console/_shop.html",
        installation=installation,
        shop=installation.shopify_shop,
        token_ending=_token_ending(installation),
        typed_shop=typed_shop,
        error=error,
        status=status,
        report=report,
    ), code
