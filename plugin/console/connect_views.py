"""Connecting from the helpdesk (docs/connect.md): a Zendesk account's Connect page, opened by
its first console launch, with OAuth or an API token; and the Freshdesk setup page.

The Zendesk forms carry a signed connect token naming the installation and the user who
launched (no cookie: the page lives in the helpdesk's frame), which is what binds a connect to
them. The Freshdesk setup page is a plain web page: a CSRF token, and a rate limit per address.
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, Flask, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from plugin import db
from plugin.clock import utcnow
from plugin.helpdesks import freshdesk, zendesk, zendesk_connection_check
from plugin.helpdesks.connect import (
    ConnectRefused,
    OAuthClient,
    check_admin_credentials,
    exchange_code,
    start_oauth,
    store_credentials,
    take_oauth_state,
)
from plugin.helpdesks.connect_freshdesk import setup_freshdesk
from plugin.helpdesks.freshdesk_installations import check_freshdesk_connection
from plugin.helpdesks.installations import ConnectionReport
from plugin.helpdesks.runtime import helpdesks
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import Installation
from plugin.web.settings import settings

bp = Blueprint("connect", __name__, url_prefix="/connect")
setup_bp = Blueprint("setup", __name__, url_prefix="/setup")

CONNECT_TOKEN_SECONDS = 1800
MAX_FIELD = 500
# The Freshdesk setup page: attempts per client address per window.
SETUP_ATTEMPTS = 10
SETUP_WINDOW_SECONDS = 600
LIMITER_KEY = "regulars.setup_attempts"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt="regulars.connect")


def _page(template: str, status: int = 200, **context: object) -> ResponseReturnValue:
    return render_template(template, **context), status


def refused(message: str, status: int = 403) -> ResponseReturnValue:
    return _page("connect/result.html", status, refused=message, report=None)


# --- Zendesk: the Connect page -----------------------------------------------------------------


def connect_page(installation: Installation, user_id: str | None) -> ResponseReturnValue:
    """The page an unconnected installation's console launch shows (plugin/console/views.py)."""
    if user_id is None:
        return refused("The launch token does not say who you are; reopen Regulars.", 401)
    token = _serializer().dumps({"i": installation.id, "u": user_id})
    config = settings()
    return _page(
        "connect/zendesk.html",
        installation=installation,
        connect_token=token,
        oauth=bool(config.zendesk_oauth_client_id),
    )


def _connecting() -> tuple[Installation, str]:
    """The installation and user the posted connect token names; ConnectRefused otherwise."""
    try:
        data = _serializer().loads(
            request.form.get("connect_token", "")[:MAX_FIELD], max_age=CONNECT_TOKEN_SECONDS
        )
    except SignatureExpired:
        raise ConnectRefused("This Connect page has expired: reopen Regulars.") from None
    except BadSignature:
        raise ConnectRefused("Open the Connect page from Regulars in the helpdesk.") from None
    installation = db.session().get(Installation, int(data["i"]))
    if installation is None or installation.platform != zendesk.PLATFORM:
        raise ConnectRefused("This installation no longer exists.")
    return installation, str(data["u"])


def _oauth_client() -> OAuthClient:
    config = settings()
    if not config.zendesk_oauth_client_id:
        raise ConnectRefused("This service has no Zendesk OAuth client: connect with an API token.")
    callback = url_for("connect.oauth_callback")
    return OAuthClient(
        client_id=config.zendesk_oauth_client_id,
        client_secret=config.zendesk_oauth_client_secret,
        redirect_uri=(
            f"{config.public_url}{callback}"
            if config.public_url
            else url_for("connect.oauth_callback", _external=True)
        ),
    )


@bp.post("/zendesk/oauth")
def oauth_start() -> ResponseReturnValue:
    """Keep a single-use state for this installation and user; send the admin to Zendesk."""
    try:
        installation, user_id = _connecting()
        client = _oauth_client()
    except ConnectRefused as refusal:
        return refused(str(refusal))
    session = db.session()
    authorize_url = start_oauth(
        session, helpdesks().connections.vault, installation, user_id, client=client, now=utcnow()
    )
    session.commit()
    # A page that moves on, not a redirect: the CSP's form-action would stop a form's
    # redirect to Zendesk.
    return _page("connect/continue.html", authorize_url=authorize_url)


@bp.get("/zendesk/oauth/callback")
def oauth_callback() -> ResponseReturnValue:
    """Zendesk sends the admin back here: use up the state, exchange the code, check, keep."""
    session = db.session()
    try:
        taken = take_oauth_state(
            session, helpdesks().connections.vault, request.args.get("state", ""), now=utcnow()
        )
    except ConnectRefused as refusal:
        session.commit()  # a state is used up even when what follows is refused
        return refused(str(refusal), 400)
    session.commit()
    installation = session.get(Installation, taken.installation_id)
    if installation is None:
        return refused("This installation no longer exists.", 400)
    code = request.args.get("code", "")
    if not code or len(code) > MAX_FIELD:
        return refused("Zendesk did not authorize Regulars. Start again from the Connect page.")
    connections = helpdesks().connections
    http = connections.accounts.session(
        zendesk.base_url_for(installation.account, installation.api_base_url)
    )
    try:
        token = exchange_code(
            http,
            installation,
            client=_oauth_client(),
            code=code,
            code_verifier=taken.code_verifier,
            timeout=connections.timeout,
        )
        credentials = ZendeskCredentials.from_oauth_token(oauth_token=token)
        check_admin_credentials(
            installation, credentials, taken.user_id, http_session=http, timeout=connections.timeout
        )
    except ConnectRefused as refusal:
        return refused(str(refusal))
    return _connected(installation, credentials)


@bp.post("/zendesk/token")
def token_connect() -> ResponseReturnValue:
    """Connect with an admin's API token and email: theirs, an admin's, then kept encrypted."""
    try:
        installation, user_id = _connecting()
        credentials = ZendeskCredentials.from_api_token(
            email=request.form.get("email", "").strip()[:MAX_FIELD],
            api_token=request.form.get("api_token", "").strip()[:MAX_FIELD],
        )
    except ConnectRefused as refusal:
        return refused(str(refusal))
    except ValueError:
        return refused("Enter your email and an API token.", 400)
    connections = helpdesks().connections
    http = connections.accounts.session(
        zendesk.base_url_for(installation.account, installation.api_base_url)
    )
    try:
        check_admin_credentials(
            installation, credentials, user_id, http_session=http, timeout=connections.timeout
        )
    except ConnectRefused as refusal:
        return refused(str(refusal))
    return _connected(installation, credentials)


def _connected(installation: Installation, credentials: ZendeskCredentials) -> ResponseReturnValue:
    session = db.session()
    connections = helpdesks().connections
    store_credentials(installation, connections.vault, credentials)
    session.commit()
    report = zendesk_connection_check.check_connection(
        session,
        installation,
        connections.vault,
        http_session=connections.accounts.session(
            zendesk.base_url_for(installation.account, installation.api_base_url)
        ),
        timeout=connections.timeout,
        now=utcnow(),
    )
    session.commit()
    return _page("connect/result.html", refused=None, report=report, installation=installation)


# --- Freshdesk: the setup page -----------------------------------------------------------------


class _Attempts:
    """Setup attempts per client address in a sliding window (this process's own count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._seen.get(address, []) if now - t < SETUP_WINDOW_SECONDS]
            if len(self._seen) > 10_000:
                self._seen.clear()  # bounded: a flood of addresses cannot grow it forever
            allowed = len(recent) < SETUP_ATTEMPTS
            if allowed:
                recent.append(now)
            self._seen[address] = recent
            return allowed


def init_app(app: Flask) -> None:
    app.extensions[LIMITER_KEY] = _Attempts()


@setup_bp.get("/freshdesk")
def freshdesk_form() -> ResponseReturnValue:
    return _page("connect/freshdesk.html", problem=None, domain="")


@setup_bp.post("/freshdesk")
def freshdesk_setup() -> ResponseReturnValue:
    """Check an admin's API key with Freshdesk, register the account, show its secret once."""
    domain = request.form.get("domain", "").strip()[:MAX_FIELD]
    attempts: _Attempts = current_app.extensions[LIMITER_KEY]
    if not attempts.allow(request.remote_addr or "unknown"):
        return _page(
            "connect/freshdesk.html",
            429,
            problem="Too many attempts from your address: wait ten minutes and try again.",
            domain=domain,
        )
    config = settings()
    connections = helpdesks().connections
    api_base_url = config.freshdesk_api_base_url or None
    session = db.session()
    try:
        account = freshdesk.account_from_domain(domain)
        http = connections.accounts.session(freshdesk.base_url_for(account, api_base_url))
        registration = setup_freshdesk(
            session,
            connections.vault,
            domain=domain,
            api_key=request.form.get("api_key", "")[:MAX_FIELD],
            allowed_accounts=config.allowed_accounts,
            api_base_url=api_base_url,
            http_session=http,
            timeout=connections.timeout,
        )
    except ValueError:
        session.rollback()
        return _page(
            "connect/freshdesk.html",
            400,
            problem="Enter the helpdesk's Freshdesk address, such as acme.freshdesk.com.",
            domain=domain,
        )
    except ConnectRefused as refusal:
        session.rollback()
        return _page("connect/freshdesk.html", 403, problem=str(refusal), domain=domain)
    session.commit()
    installation = registration.installation
    report: ConnectionReport = check_freshdesk_connection(
        installation,
        connections.vault,
        http_session=http,
        timeout=connections.timeout,
        now=utcnow(),
    )
    session.commit()
    return _page(
        "connect/freshdesk_done.html",
        installation=installation,
        secret=registration.new_secret,
        report=report,
    )
