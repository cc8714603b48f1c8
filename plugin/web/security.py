"""Security headers for every response: a strict CSP, framing limited to the helpdesks."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from plugin.config import Settings


def content_security_policy(settings: Settings) -> str:
    """Return the CSP: no inline script or style, framed only by the helpdesks (and the demo)."""
    script_sources = ["'self'"]
    sdk = urlsplit(settings.zaf_sdk_url)
    if sdk.scheme == "https" and sdk.netloc:
        script_sources.append(f"https://{sdk.netloc}")
    ancestors = list(settings.frame_ancestors)
    if settings.demo_enabled:
        ancestors.insert(0, "'self'")
    directives = {
        "default-src": ["'self'"],
        "script-src": script_sources,
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "frame-ancestors": ancestors or ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def init_app(app: Flask, settings: Settings) -> None:
    """Add the security headers to every response the app sends."""
    policy = content_security_policy(settings)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: CSRF checks on HTTPS need the Referer of our own pages.
        response.headers["Referrer-Policy"] = "same-origin"
        # Pages and JSON carry session tokens and customer data: no cache may keep them. Files
        # that say how to cache themselves (static assets) keep their own header.
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response
