"""The fake Zendesk's OAuth: the authorization code grant with PKCE, as an admin's browser and
the service meet it (`/oauth/authorizations/new`, then `POST /oauth/tokens`).

The user signed in to the fake (`data.signed_in_user`) allows every request at once: the
consent page is Zendesk's, not the service's, so the fake redirects straight back.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from flask import Flask, Response, request

from bench.fake_base import json_response

if TYPE_CHECKING:
    from bench.fake_zendesk import FakeZendeskState


def _challenge(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _invalid_grant(description: str) -> Response:
    return json_response({"error": "invalid_grant", "error_description": description}, 400)


def add_routes(app: Flask, state: FakeZendeskState) -> None:
    """Add the authorize page and the token endpoint to the fake's app."""
    data = state.data

    @app.get("/oauth/authorizations/new", endpoint="oauth_authorize")
    def authorize() -> Response:
        args = request.args
        client_id = args.get("client_id", "")
        redirect_uri = args.get("redirect_uri", "")
        with state.lock:
            if client_id not in data.oauth_clients or not redirect_uri:
                return json_response({"error": "invalid_client"}, 400)
            if args.get("response_type") != "code" or args.get("code_challenge_method") != "S256":
                return json_response({"error": "unsupported_response_type"}, 400)
            if data.signed_in_user is None:
                return json_response({"error": "access_denied"}, 403)
            code = secrets.token_urlsafe(24)
            data.oauth_codes[code] = {
                "user_id": data.signed_in_user,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_challenge": args.get("code_challenge", ""),
            }
        query = urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": f"{redirect_uri}?{query}"})

    @app.post("/oauth/tokens", endpoint="oauth_tokens")
    def tokens() -> Response:
        body = request.get_json(silent=True) or request.form.to_dict()
        if not isinstance(body, dict) or body.get("grant_type") != "authorization_code":
            return json_response({"error": "unsupported_grant_type"}, 400)
        with state.lock:
            grant = data.oauth_codes.pop(str(body.get("code", "")), None)
            if grant is None:
                return _invalid_grant("unknown or used code")
            client_id = str(body.get("client_id", ""))
            secret = data.oauth_clients.get(client_id)
            if client_id != grant["client_id"] or secret is None:
                return json_response({"error": "invalid_client"}, 401)
            if secret and body.get("client_secret") != secret:
                return json_response({"error": "invalid_client"}, 401)
            if body.get("redirect_uri") != grant["redirect_uri"]:
                return _invalid_grant("redirect_uri does not match")
            if _challenge(str(body.get("code_verifier", ""))) != grant["code_challenge"]:
                return _invalid_grant("code_verifier does not match")
            token = secrets.token_urlsafe(32)
            data.oauth_tokens[token] = int(grant["user_id"])
        return json_response({"access_token": token, "token_type": "bearer", "scope": "read write"})
