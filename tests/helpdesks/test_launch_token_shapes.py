"""Launch tokens held to one shape at the door: the sidebar's and the console's launches answer
401, with no session, to a token signed with the installation's own key but with a foreign
`iss`, no `sub`, a long life, a list `aud`, an `exp` given as a string, or a replayed `jti`.

tests/helpdesks/test_tokens.py says why each is refused; this is what a browser gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugin.demo import signing
from plugin.models import Installation
from tests import tokens
from tests.console.test_views import ADMIN, QUERY

Claims = Callable[[dict[str, Any]], dict[str, Any]]

SHAPES: dict[str, Claims] = {
    "foreign-iss": lambda claims: claims | {"iss": "evil.zendesk.com"},
    "no-sub": lambda claims: {k: v for k, v in claims.items() if k != "sub"},
    "ten-year-life": lambda claims: claims | {"exp": int(time.time()) + 10 * 365 * 86400},
    "aud-list-foreign-first": lambda claims: (
        claims | {"aud": ["https://evil.example", claims["aud"]]}
    ),
    "aud-list": lambda claims: claims | {"aud": [claims["aud"]]},
    "exp-as-string": lambda claims: claims | {"exp": str(int(time.time()) + 300)},
}


def signed(app: Flask, installation: Installation, shape: Claims) -> str:
    """A token signed with the installation's own key (the demo's), reshaped."""
    key = signing.load_or_create_private_key(Path(app.instance_path))
    claims = tokens.claims(installation.token_audience or "") | {"sub": ADMIN}
    return tokens.rs256(key, shape(claims))


@pytest.mark.parametrize("path", ["/sidebar", "/console"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_token_of_another_shape_gets_a_401(
    app: Flask, client: FlaskClient, demo_installation: Installation, path: str, shape: str
) -> None:
    answer = client.post(
        path, query_string=QUERY, data={"token": signed(app, demo_installation, SHAPES[shape])}
    )
    assert answer.status_code == 401, answer.get_data(as_text=True)[:300]
    assert "data-session-token" not in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/sidebar", "/console"])
def test_the_same_token_in_its_right_shape_gets_in_and_once_only(
    app: Flask, client: FlaskClient, demo_installation: Installation, path: str
) -> None:
    token = signed(app, demo_installation, lambda claims: claims | {"jti": f"shape-{path}"})
    first = client.post(path, query_string=QUERY, data={"token": token})
    assert first.status_code == 200 and "data-session-token" in first.get_data(as_text=True)
    again = client.post(path, query_string=QUERY, data={"token": token})
    assert again.status_code == 401
    assert "data-session-token" not in again.get_data(as_text=True)
