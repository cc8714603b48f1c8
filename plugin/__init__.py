"""Regulars: a helpdesk sidebar that tells agents who a customer is to the business."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from plugin import db, observability
from plugin.config import Settings, instance_encryption_key, settings_from_environment
from plugin.credentials import EXTENSION_KEY as VAULT_KEY
from plugin.credentials import CredentialsVault
from plugin.tokens import SidebarSessions
from plugin.web import formatting, helpdesks, security
from plugin.web.settings import EXTENSION_KEY as SETTINGS_KEY

csrf = CSRFProtect()


def create_app(settings: Settings | None = None, *, instance_path: str | None = None) -> Flask:
    """Create the service: settings are read here, once, unless given."""
    root = Path(__file__).resolve().parent.parent
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("REGULARS_INSTANCE_PATH") or None,
        instance_relative_config=True,
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
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
    csrf.init_app(app)
    observability.init_app(app, log_format=settings.log_format)
    security.init_app(app, settings)
    formatting.init_app(app)
    helpdesks.init_app(app, settings)

    from plugin import delivery_cli

    delivery_cli.init_app(app, settings)

    from plugin.freshdesk_cli import freshdesk_cli
    from plugin.installations_cli import installations_cli, zendesk_cli
    from plugin.packaging.cli import package_cli
    from plugin.rules_cli import rules_cli
    from plugin.segments_cli import segments_cli
    from plugin.sources.cli import data_cli
    from plugin.web import console, console_segments, demo, freshdesk, health, push, sidebar
    from plugin.web.reviews import bp as reviews_bp
    from plugin.web.suggestions import bp as suggestions_bp

    app.register_blueprint(sidebar.bp)
    app.register_blueprint(suggestions_bp)
    app.register_blueprint(reviews_bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(console_segments.bp)
    from plugin.web import console_reports, console_reviews

    for review_bp in (console_reviews.bp, console_reports.bp):
        app.register_blueprint(review_bp)
        csrf.exempt(review_bp)  # the console's bearer session, like console_segments
    from plugin.web import console_access, console_catalog, console_rules

    for console_bp in (console_catalog.bp, console_rules.bp, console_access.bp):
        app.register_blueprint(console_bp)
        csrf.exempt(console_bp)  # the console's bearer session, like console_segments
    app.register_blueprint(push.bp)
    csrf.exempt(push.bp)  # authenticated by the push token in a header, not by cookies
    app.register_blueprint(freshdesk.bp)
    csrf.exempt(freshdesk.bp)  # authenticated by the installation's secret in a header
    # The helpdesk's signed POSTs are authenticated by their JWT, and the console's calls by a
    # bearer token the page holds (no cookies), not by a CSRF token.
    csrf.exempt(sidebar.launch)
    csrf.exempt(suggestions_bp)  # the sidebar's bearer session, like the banner's
    csrf.exempt(reviews_bp)  # the sidebar's bearer session, like the suggestions card's
    csrf.exempt(console.bp)
    csrf.exempt(console_segments.bp)
    from plugin.web import console_delivery

    app.register_blueprint(console_delivery.bp)
    csrf.exempt(console_delivery.bp)  # the console's bearer session, like console_segments
    app.register_blueprint(health.bp)
    app.cli.add_command(demo.demo_cli)
    app.cli.add_command(package_cli)
    app.cli.add_command(data_cli)
    app.cli.add_command(segments_cli)
    app.cli.add_command(rules_cli)
    app.cli.add_command(zendesk_cli)
    app.cli.add_command(freshdesk_cli)
    app.cli.add_command(installations_cli)
    if settings.demo_enabled:
        app.register_blueprint(demo.bp)
    return app
