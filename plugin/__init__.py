"""Regulars: a helpdesk sidebar that tells agents who a customer is to the business."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from plugin import db, observability
from plugin.config import EXTENSION_KEY as SETTINGS_KEY
from plugin.config import Settings, instance_encryption_key, settings_from_environment
from plugin.helpdesks import runtime as helpdesks
from plugin.helpdesks.credentials import EXTENSION_KEY as VAULT_KEY
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.tokens import SidebarSessions
from plugin.resources import resource_path
from plugin.web import after_response, assets, formatting, i18n, security

csrf = CSRFProtect()


def create_app(settings: Settings | None = None, *, instance_path: str | None = None) -> Flask:
    """Create the service: settings are read here, once, unless given."""
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("REGULARS_INSTANCE_PATH") or None,
        instance_relative_config=True,
        template_folder=str(resource_path("templates")),
        static_folder=str(resource_path("static")),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if settings is None:
        settings = settings_from_environment(Path(app.instance_path))
    app.config.update(settings.flask_config())
    app.extensions[SETTINGS_KEY] = settings
    app.extensions["regulars.sidebar_sessions"] = SidebarSessions(
        settings.secret_key, ttl_seconds=settings.sidebar_session_ttl_seconds
    )
    app.extensions[VAULT_KEY] = CredentialsVault(
        settings.encryption_keys or (instance_encryption_key(Path(app.instance_path)),)
    )
    observability.configure_logging(settings.log_format, settings.log_level)
    if settings.trusted_proxies:
        # Behind a TLS-terminating proxy: its X-Forwarded-* say the scheme, host and client.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    db.init_app(app, settings.database_url)
    after_response.init_app(app)
    csrf.init_app(app)
    observability.init_app(app, log_format=settings.log_format)
    security.init_app(app, settings)
    formatting.init_app(app)
    i18n.init_app(app)
    assets.init_app(app)
    helpdesks.init_app(app, settings)

    _register_features(app, settings)
    return app


def _register_features(app: Flask, settings: Settings) -> None:
    """Register each feature's blueprints and commands.

    Only the helpdesk's signed launch and the demo's own forms are cookie-borne: everything
    else is authenticated by a bearer session the page holds (sidebar cards, console), by the
    installation's secret (Freshdesk's request proxy) or by a push token, never by a cookie,
    so CSRF tokens do not apply to them.
    """
    from plugin.console import access_views as console_access
    from plugin.console import connect_views
    from plugin.console import masking_views as console_masks
    from plugin.console import privacy_views as console_privacy
    from plugin.console import views as console
    from plugin.customers import console_views as console_segments
    from plugin.customers import push_views as push
    from plugin.customers import shop_console_views as console_shop
    from plugin.customers.cli import data_cli
    from plugin.customers.segments_cli import segments_cli
    from plugin.delivery import cli as delivery_cli
    from plugin.delivery import views as console_delivery
    from plugin.demo import views as demo
    from plugin.gestures import console_views as console_gestures
    from plugin.gestures import sidebar_views as gestures
    from plugin.goodwill import catalog_views, rules_views
    from plugin.goodwill import views as suggestions
    from plugin.goodwill.cli import rules_cli
    from plugin.helpdesks.freshdesk_cli import freshdesk_cli
    from plugin.helpdesks.zendesk_cli import installations_cli, zendesk_cli
    from plugin.packaging.cli import package_cli
    from plugin.reports import effects_views as console_effects
    from plugin.reports import views as console_reports
    from plugin.reports.cli import effects_cli
    from plugin.reviews import console_views as console_reviews
    from plugin.reviews import views as reviews
    from plugin.sidebar import answer_views, event_cli, event_views
    from plugin.sidebar import freshdesk_views as freshdesk
    from plugin.sidebar import orders_views as orders
    from plugin.sidebar import views as sidebar
    from plugin.web import health

    app.register_blueprint(sidebar.bp)
    csrf.exempt(sidebar.launch)  # authenticated by the helpdesk's signed JWT
    bearer_or_secret = (
        suggestions.bp,
        gestures.bp,
        reviews.bp,
        orders.bp,
        answer_views.bp,
        console.bp,
        console_access.bp,
        console_privacy.bp,
        console_masks.bp,
        console_shop.bp,
        console_segments.bp,
        catalog_views.bp,
        rules_views.bp,
        console_reviews.bp,
        console_reports.bp,
        console_effects.bp,
        console_delivery.bp,
        console_gestures.bp,
        push.bp,
        freshdesk.bp,
        event_views.bp,  # signed by the helpdesk, or its event secret
    )
    for bp in bearer_or_secret:
        app.register_blueprint(bp)
        csrf.exempt(bp)
    app.register_blueprint(health.bp)
    # The Zendesk Connect forms carry a signed connect token (no cookie); the Freshdesk setup
    # page is a cookie-borne form and keeps its CSRF token.
    app.register_blueprint(connect_views.bp)
    csrf.exempt(connect_views.bp)
    app.register_blueprint(connect_views.setup_bp)
    connect_views.init_app(app)
    if settings.demo_enabled:
        app.register_blueprint(demo.bp)

    delivery_cli.init_app(app, settings)
    event_cli.init_app(app, settings)
    for command in (
        demo.demo_cli,
        package_cli,
        data_cli,
        segments_cli,
        rules_cli,
        effects_cli,
        zendesk_cli,
        freshdesk_cli,
        installations_cli,
    ):
        app.cli.add_command(command)
