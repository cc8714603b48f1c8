"""Every endpoint, called as installation B and aimed at installation A: nothing of A is read
or written.

The endpoints come from the app's URL map, so a new one is swept as soon as it is registered,
by the kind of credential its path takes (an unknown kind fails here until it is added, or
listed as public with why in `test_every_endpoint.PUBLIC`). B holds a real credential of each
kind (a launch token signed with its key, its sidebar session, its admin's console session,
its Freshdesk secret, its push token, the demo desk's CSRF token, the operator's metrics
token); each request carries A's ids (in the path, the query and the body: A's ticket, its
customer, rule, catalog entry, escalation, persona, checklist and item, and A's id, account
and Freshdesk domain by name) and B's own credentials, so it reaches the handler. Then:

- no read: the answer (HTML, JSON, CSV, headers) holds none of A's markers (`Zqxa<n>`, on
  every distinctive text of A; see `tests/isolation_world.py`), but those the request sent;
- no write: every row of A, in every table, is as it was, and no row of B points at a row of A;
- the reverse: B's credentials naming A (a launch token for A's audience signed with B's key,
  B's Freshdesk secret from A's domain) are refused.

Before each endpoint, A's own sidebar looks at the same ticket, so the process's caches hold
A's answers when B asks. Each endpoint runs on a fresh copy of one seeded SQLite database.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from werkzeug.routing import Rule

from plugin import db
from plugin.clock import utcnow
from plugin.demo import signing
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.demo.seed import ISSUER as DEMO_DOMAIN
from plugin.helpdesks.freshdesk import domain_of
from plugin.helpdesks.zendesk_webhooks import signature_for
from tests import tokens
from tests.conftest import TEST_SECRET, build_app, dispose_app
from tests.console.test_views import launch as console_launch
from tests.customers.test_console_views import BUSY_REGULARS
from tests.demo.test_views import csrf_token
from tests.goodwill.console_world import CHAMPIONS_RULE, SAMPLE_ENTRY
from tests.isolation_world import (
    A_ACCOUNT,
    A_ONLY_TICKET,
    ADMIN,
    AGENT,
    World,
    changed_tables,
    cross_installation_references,
    installation_rows,
    markers_in,
    seed_world,
)
from tests.reviews.test_console_views import WIN_BACK
from tests.seeded_demo import copy_sqlite
from tests.sidebar.test_views import QUERY, launch, session_token
from tests.web.test_every_endpoint import PUBLIC, example_path

METRICS_TOKEN = "sweep-metrics-token-0123456789abcdef"
# Answers that say the request was refused for want of credentials: B's are real, so none of
# these may come back, except to the reverse requests (B naming A), which expect them.
NOT_AUTHENTICATED = {401, 403}
ANY_STATUS = frozenset(range(100, 600))
_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


# --- The endpoints, from the URL map ---------------------------------------------------------


def _url_map() -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) of every route, read from an app built for the purpose."""
    with tempfile.TemporaryDirectory() as folder:
        app = build_app(f"sqlite:///{Path(folder) / 'routes.sqlite3'}", Path(folder) / "instance")
        try:
            return sorted(
                (method, rule.rule, rule.endpoint)
                for rule in app.url_map.iter_rules()
                for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
            )
        finally:
            dispose_app(app)


ROUTES = _url_map()


def kind_of(method: str, rule: str, endpoint: str) -> str | None:
    """Which credential the endpoint takes, by where it lives; None: nobody said."""
    if (method, rule) in PUBLIC:
        return "public"
    if endpoint in {"console.launch", "sidebar.launch"}:
        return "launch"
    for prefix, kind in (
        ("/console/", "console"),
        ("/sidebar/", "sidebar"),  # the cards and whatever the sidebar's page posts
        ("/freshdesk/", "freshdesk"),
        ("/api/v1/", "push"),
        ("/demo/api/", "demo"),
        ("/events/", "events"),
        ("/connect/", "connect"),  # the Connect page's signed token, or OAuth's state
        ("/setup/", "setup"),  # the Freshdesk setup form: its CSRF token
    ):
        if rule.startswith(prefix):
            return kind
    if rule == "/metrics":
        return "operator"
    return None


# --- The world: A and B, seeded once, copied for each endpoint -------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A and B seeded, with B's sessions (and A's own sidebar's) from the real launches."""
    folder = tmp_path_factory.mktemp("isolation")
    template = folder / "world.sqlite3"
    app = build_app(f"sqlite:///{template}", folder / "instance")
    try:
        world = seed_world(app, template)
        client = app.test_client()
        b_key = signing.load_or_create_private_key(world.instance)
        world.sessions["b_sidebar"] = session_token(
            launch(client, _token(b_key, world.b_audience, AGENT)).get_data(as_text=True)
        )
        world.sessions["b_console"] = session_token(
            console_launch(client, _token(b_key, world.b_audience, ADMIN)).get_data(as_text=True)
        )
        world.sessions["a_sidebar"] = session_token(
            launch(client, _token(world.a_key, world.a_audience, AGENT)).get_data(as_text=True)
        )
        # B's agent has had the ticket open: B's account review of it is under way.
        b_bearer = {"Authorization": f"Bearer {world.sessions['b_sidebar']}"}
        query = {"ticket_id": world.ticket, "requester_id": world.requester}
        for card in (
            "/sidebar/banner",
            "/sidebar/view",
            "/sidebar/suggestions",
            "/sidebar/orders",
            "/sidebar/review",
        ):
            assert client.get(card, query_string=query, headers=b_bearer).status_code == 200
        settle(app)
    finally:
        dispose_app(app)
    return world


def _token(key: Any, audience: str, user: str) -> str:
    return tokens.rs256(key, tokens.claims(audience) | {"sub": user})


@pytest.fixture
def sweep_app(world: World, tmp_path: Path) -> Iterator[Flask]:
    copy = tmp_path / "sweep.sqlite3"
    copy_sqlite(world.template, copy)
    app = build_app(f"sqlite:///{copy}", world.instance, metrics_token=METRICS_TOKEN)
    yield app
    dispose_app(app)


# --- The requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request of B's, and the answers it may get (None: any but a refusal of B's
    credentials or a server error)."""

    what: str
    method: str
    path: str
    options: dict[str, Any]
    expect: frozenset[int] | None = None


def a_fields(world: World, ticket: str) -> dict[str, str]:
    """Every field a form or body of the service reads, naming A's objects (and A itself)."""
    return {
        "ticket_id": ticket,
        "requester_id": world.requester,
        "installation_id": str(world.a_id),
        "installation": str(world.a_id),
        "account": A_ACCOUNT,
        "subdomain": A_ACCOUNT,
        "domain": domain_of(A_ACCOUNT),
        "customer_id": str(world.a_customer_id),
        "try_customer_id": str(world.a_customer_id),
        "try_customer": world.a_customer_email,
        "rule_id": world.a_objects["rule_id"][0],
        "entry_id": world.a_objects["entry_id"][0],
        "escalation_id": world.a_objects["escalation_id"][0],
        "persona_id": world.a_objects["persona_id"][0],
        "template_id": world.a_objects["template_id"][0],
        "action_id": world.a_objects["action_id"][0],
        "item": str(world.a_item_id),
        "exception": world.a_entry_key,
        "kind": "apply",
        "reason": world.a_reason,
        "amount": "5",
        "text": "isolation sweep",
        "checked": "true",
        "decision": "approve",
        "to_version": "1",
        "enabled": "false",
        "idempotency_key": "isolation-sweep-0001",
    }


# The fields the sidebar cards' forms have (Freshdesk's proxy takes no more than 20).
CARD_FIELDS = (
    "exception",
    "kind",
    "reason",
    "amount",
    "text",
    "idempotency_key",
    "item",
    "checked",
    "rule_id",
    "escalation_id",
    "customer_id",
    "requester_id",
    "ticket_id",
    "installation_id",
)


# The form each console section reads, so a request gets past validation where it can.
CONSOLE_FORMS: dict[str, dict[str, Any]] = {
    "console_rules": CHAMPIONS_RULE,
    "console_catalog": SAMPLE_ENTRY | {"segment": "tier:high", "monthly": "100"},
    "console_segments": BUSY_REGULARS
    | {"tier.high": "Guidance of B's", "medium_min_orders": "3", "medium_min_spend": "250"}
    | {"high_min_orders": "12", "high_min_spend": "1500"},
    "console_reviews": WIN_BACK,
    "console_reports": {
        "from": (utcnow() - timedelta(days=365)).date().isoformat(),
        "to": utcnow().date().isoformat(),
    },
    "console_effects": {
        "from": (utcnow() - timedelta(days=365)).date().isoformat(),
        "to": utcnow().date().isoformat(),
    },
    "console_access": {"supervisor_roles": "agent"},
    # B's masks, saved: they are B's rows only, and A's roles keep theirs.
    "console_masks": {"role-0": "agent", "shows-0": "email", "default_shows": "phone"},
    # Turning a gesture kind on in B touches B's settings only.
    "console_gestures": {"kind": "gift_card", "enabled": "true"},
    # Forgetting, confirmed: B's erasure of A's customer's email must touch nothing of A's.
    "console_privacy": {"kind": "email", "confirm": "yes"},
    # Connecting B's store: an empty token is refused before any call to Shopify (the sweep
    # makes no outside calls); tests/customers/test_shop_console.py connects one for real.
    "console_shop": {"shop": "b-shop.myshopify.com", "access_token": ""},
}


def console_upload(world: World, endpoint: str) -> dict[str, Any]:
    """The file an upload endpoint reads, naming A's customer and order (B's by the same ids)."""
    if endpoint == "console.import_data":
        csv = (
            "customer_id,name,email\n"
            f"{world.a_customer_external_id},Imported by B,imported-by-b@example.com\n"
        )
        return {"kind": "customers", "file": (io.BytesIO(csv.encode()), "customers.csv")}
    if endpoint == "console_rules.import_rules":
        rules = json.dumps(demo_rules_file()).encode()
        return {"file": (io.BytesIO(rules), "rules.json")}
    return {}


def _without(form: dict[str, Any], name: str) -> dict[str, Any]:
    """The form without one field; an upload's file again from its start."""
    again = {key: value for key, value in form.items() if key != name}
    for key, value in again.items():
        if isinstance(value, tuple):
            again[key] = (io.BytesIO(value[0].getvalue()), value[1])
    return again


def path_variants(world: World, rule: str) -> list[str]:
    """The rule's path with A's objects in its variables; one path per object of A."""
    names = [match.group(2) for match in _VARIABLE.finditer(rule)]
    if not names:
        return [rule]
    missing = [name for name in names if name not in world.a_objects]
    if missing:
        pytest.fail(f"{rule}: which object of A goes in <{'>, <'.join(missing)}>? Add it.")
    count = max(len(world.a_objects[name]) for name in names)
    paths = []
    for index in range(count):
        path = rule
        for name in names:
            objects = world.a_objects[name]
            path = re.sub(rf"<(?:[^<>:]+:)?{name}>", objects[index % len(objects)], path)
        paths.append(path)
    return paths


def probes(world: World, kind: str, method: str, rule: str, endpoint: str) -> list[Probe]:
    """B's requests to one endpoint, aimed at A: for each of A's objects its path can name."""
    if kind == "public":
        # Any answer (readiness may say the database is not migrated), but none of A's data.
        return [Probe("no credentials", method, example_path_of(rule), {}, ANY_STATUS)]
    if kind == "launch":
        return _launch_probes(world, method, rule, endpoint)
    found: list[Probe] = []
    for path in path_variants(world, rule):
        found += PROBES[kind](world, method, path, endpoint, "<int:" in rule)
    return found


def _launch_probes(world: World, method: str, rule: str, endpoint: str) -> list[Probe]:
    b_key = signing.load_or_create_private_key(world.instance)
    user = ADMIN if endpoint.startswith("console") else AGENT
    naming_a = a_fields(world, world.ticket)
    return [
        Probe(
            "B's launch token, A's ids beside it",
            method,
            rule,
            {
                "query_string": QUERY | naming_a,
                "data": naming_a | {"token": _token(b_key, world.b_audience, user)},
            },
            frozenset({200}),
        ),
        Probe(
            "reverse: a token for A's audience signed with B's key",
            method,
            rule,
            {"query_string": QUERY, "data": {"token": _token(b_key, world.a_audience, user)}},
            frozenset({401}),
        ),
    ]


def _console_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    """The section's form with A's ids in it; an id of A's in the path is a 404."""
    form = a_fields(world, world.ticket) | CONSOLE_FORMS.get(endpoint.partition(".")[0], {})
    form |= console_upload(world, endpoint)
    if endpoint.startswith("console_privacy."):
        form |= {"value": world.a_customer_email}
    bearer = {"Authorization": f"Bearer {world.sessions['b_console']}"}
    sent = {"data": form} if method == "POST" else {"query_string": form}
    expect = frozenset({404}) if has_ids else None
    found = [Probe("form naming A", method, path, {"headers": bearer} | sent, expect)]
    if method == "POST" and not has_ids:
        # Without A's rule: a draft to try gets as far as A's customer.
        options = {"headers": bearer, "data": _without(form, "rule_id")}
        found.append(Probe("form naming A, but not A's rule", method, path, options))
    return found


def _sidebar_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    """Every card field naming A's objects, as a form and as JSON; A's own ticket is a 404."""
    bearer = {"Authorization": f"Bearer {world.sessions['b_sidebar']}"}
    found = []
    for ticket in (world.ticket, A_ONLY_TICKET):
        fields = a_fields(world, ticket)
        expect = frozenset({404}) if ticket == A_ONLY_TICKET else None
        if method == "GET":
            options = {"headers": bearer, "query_string": fields}
            found.append(Probe(f"ticket {ticket}", method, path, options, expect))
            continue
        for shape in ("data", "json"):
            options = {"headers": bearer, shape: fields}
            found.append(Probe(f"ticket {ticket} as {shape}", method, path, options, expect))
    return found


def _freshdesk_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    """The page's view and the card's form naming A's objects; from A's domain, a 403."""
    secret = {"X-Regulars-Secret": world.b_freshdesk_secret}
    found = []
    for ticket in (world.ticket, A_ONLY_TICKET):
        fields = a_fields(world, ticket)
        view = {
            "ticket_id": ticket,
            "requester_id": world.requester,
            "agent_id": AGENT,
            "domain": DEMO_DOMAIN,
            "installation_id": world.a_id,
            "action": {name: fields[name] for name in CARD_FIELDS},
        }
        expect = frozenset({404}) if ticket == A_ONLY_TICKET else None
        options = {"headers": secret, "json": view}
        found.append(Probe(f"ticket {ticket}", method, path, options, expect))
    reverse = {"headers": secret, "json": view | {"domain": domain_of(A_ACCOUNT)}}
    found.append(
        Probe("reverse: B's secret from A's domain", method, path, reverse, frozenset({403}))
    )
    return found


def _push_probes(world: World, method: str, path: str, endpoint: str, has_ids: bool) -> list[Probe]:
    """Customers and orders with A's ids, and orders for A's customer by email."""
    token = {"Authorization": f"Bearer {world.b_push_token}"}
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    by_id = {
        "installation_id": world.a_id,
        "customers": [
            {"customer_id": world.a_customer_external_id, "name": "B's", "email": "b@example.com"}
        ],
        "orders": [
            {
                "order_id": world.a_order_external_id,
                "customer_id": world.a_customer_external_id,
                "placed_at": yesterday,
                "amount": 1,
            }
        ],
    }
    by_email = {
        "customers": [{"customer_id": "b-1", "name": "B's", "email": world.a_customer_email}],
        "orders": [
            {
                "order_id": "b-1",
                "customer_email": world.a_customer_email,
                "placed_at": yesterday,
                "amount": 1,
            }
        ],
    }
    return [
        Probe("A's ids", method, path, {"headers": token, "json": by_id}),
        Probe("A's customer's email", method, path, {"headers": token, "json": by_email}),
    ]


def _operator_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    options = {"headers": bearer, "query_string": a_fields(world, world.ticket)}
    return [Probe("the metrics token", method, path, options, frozenset({200}))]


def _demo_probes(world: World, method: str, path: str, endpoint: str, has_ids: bool) -> list[Probe]:
    """The demo desk's calls (B is the demo) with A's tickets; A's own ticket is a 404.

    The test adds the CSRF token of the desk's page."""
    found = []
    tickets = [world.ticket] if world.ticket in path else [A_ONLY_TICKET, world.ticket]
    for ticket in tickets:
        body = json.dumps({"ticket_id": ticket, "agent_id": AGENT, "domain": DEMO_DOMAIN})
        call = a_fields(world, ticket) | {"template": "getSidebar", "context": {}, "body": body}
        expect = frozenset({404}) if A_ONLY_TICKET in path else None
        found.append(Probe(f"ticket {ticket}", method, path, {"json": call}, expect))
    return found


def _event_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    """A helpdesk event for A's installation, signed or vouched for with B's secret: a 401."""
    body = json.dumps({"type": "zen:event-type:user.deleted", "detail": {"id": world.requester}})
    stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "X-Zendesk-Webhook-Signature": signature_for(
            world.b_freshdesk_secret, stamp, body.encode()
        ),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Regulars-Event-Secret": world.b_freshdesk_secret,
        "Content-Type": "application/json",
    }
    return [Probe("B's secret", method, path, {"headers": headers, "data": body}, frozenset({401}))]


def _connect_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    """B's connect token (B is connected: refused) with A's ids beside it; a token naming A
    signed with another key; OAuth's callback with a state that is not one: all refused."""
    naming_a = a_fields(world, world.ticket)
    if method == "GET":
        query = naming_a | {"state": "not-a-state", "code": "x"}
        return [
            Probe(
                "a state that is not one", method, path, {"query_string": query}, frozenset({400})
            )
        ]
    b_token = URLSafeTimedSerializer(TEST_SECRET, salt="regulars.connect").dumps(
        {"i": world.b_id, "u": ADMIN}
    )
    forged = URLSafeTimedSerializer("x" * 40, salt="regulars.connect").dumps(
        {"i": world.a_id, "u": ADMIN}
    )
    form = naming_a | {"email": "x@example.com", "api_token": "x"}
    return [
        Probe(
            "B's connect token",
            method,
            path,
            {"data": form | {"connect_token": b_token}},
            frozenset({403}),
        ),
        Probe(
            "reverse: a token naming A, signed with another key",
            method,
            path,
            {"data": form | {"connect_token": forged}},
            frozenset({403}),
        ),
    ]


def _setup_probes(
    world: World, method: str, path: str, endpoint: str, has_ids: bool
) -> list[Probe]:
    """A's Freshdesk domain on the setup form (the test adds the CSRF token): refused."""
    form = a_fields(world, world.ticket) | {"api_key": "x"}
    return [Probe("A's domain", method, path, {"data": form}, frozenset({400, 403}))]


PROBES = {
    "connect": _connect_probes,
    "setup": _setup_probes,
    "events": _event_probes,
    "console": _console_probes,
    "sidebar": _sidebar_probes,
    "freshdesk": _freshdesk_probes,
    "push": _push_probes,
    "operator": _operator_probes,
    "demo": _demo_probes,
}


def example_path_of(rule: str) -> str:
    return example_path(Rule(rule))


# --- The sweep -----------------------------------------------------------------------------


def warm_up_as_a(client: FlaskClient, world: World) -> None:
    """A's own sidebar looks at the ticket first: the process's caches now hold A's answers."""
    bearer = {"Authorization": f"Bearer {world.sessions['a_sidebar']}"}
    query = {"ticket_id": world.ticket, "requester_id": world.requester}
    banner = client.get("/sidebar/banner", query_string=query, headers=bearer)
    assert banner.status_code == 200, banner.get_data(as_text=True)
    assert markers_in(banner.get_data(as_text=True)), "A's own banner shows A's data"
    for card in ("/sidebar/suggestions", "/sidebar/orders", "/sidebar/review"):
        assert client.get(card, query_string=query, headers=bearer).status_code in {200, 204}


def settle(app: Flask) -> None:
    """Wait for the writes a view leaves to the worker threads (seen tickets)."""
    app.extensions["regulars.helpdesks"].seen.wait(timeout=10)


SWEPT = [route for route in ROUTES if kind_of(*route) != "public"]


@pytest.mark.parametrize(
    ("method", "rule", "endpoint"), ROUTES, ids=[f"{m} {r}" for m, r, _ in ROUTES]
)
def test_b_reads_and_writes_nothing_of_a(
    sweep_app: Flask, world: World, method: str, rule: str, endpoint: str
) -> None:
    kind = kind_of(method, rule, endpoint)
    assert kind is not None, (
        f"{method} {rule} ({endpoint}) is not swept: say which credential it takes in kind_of, "
        "or list it as public with why in test_every_endpoint.PUBLIC"
    )
    client = sweep_app.test_client()
    warm_up_as_a(client, world)
    csrf = csrf_token(client) if kind in {"demo", "setup"} else ""
    engine = db.database(sweep_app).engine
    settle(sweep_app)
    with engine.connect() as connection:
        before = installation_rows(connection, world.a_id)
        assert cross_installation_references(connection) == []
    sent = probes(world, kind, method, rule, endpoint)
    assert sent, f"no request for {method} {rule}"
    for probe in sent:
        options = dict(probe.options)
        if csrf:
            options["headers"] = options.get("headers", {}) | {"X-CSRFToken": csrf}
        answer = client.open(probe.path, method=probe.method, **options)
        settle(sweep_app)
        label = f"{method} {rule} [{probe.what}] answered {answer.status_code}"
        body = answer.get_data(as_text=True)
        answer.close()
        if probe.expect is not None:
            assert answer.status_code in probe.expect, f"{label}: {body[:500]}"
        else:
            assert answer.status_code < 500, f"{label}: {body[:500]}"
            assert answer.status_code not in NOT_AUTHENTICATED, f"{label}: {body[:500]}"
        shown = body + "\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
        leaked = markers_in(shown) - markers_in(repr(probe))
        assert not leaked, f"{label}: A's data in B's answer: " + ", ".join(
            f"{token} ({world.markers.get(token, '?')})" for token in sorted(leaked)
        )
        with engine.connect() as connection:
            changes = changed_tables(before, installation_rows(connection, world.a_id))
            assert not changes, f"{label}: A's rows changed: {changes}"
            crossed = cross_installation_references(connection)
            assert not crossed, f"{label}: B's rows point at A's: {crossed}"


def test_every_endpoint_is_swept_or_public(record_property: Any) -> None:
    """Each endpoint of the URL map is swept by its credential, or public with a reason; the
    count is the closing note's "endpoints checked for isolation"."""
    unknown = [f"{m} {r} ({e})" for m, r, e in ROUTES if kind_of(m, r, e) is None]
    assert not unknown, f"not swept and not public: {unknown}"
    public = [route for route in ROUTES if kind_of(*route) == "public"]
    assert len(SWEPT) == len(ROUTES) - len(public)
    assert len(SWEPT) >= 60
    record_property("endpoints_checked_for_isolation", len(SWEPT))
    print(
        f"{len(SWEPT)} endpoints checked for isolation "
        f"({len(public)} public, also checked for A's data, of {len(ROUTES)})"
    )


# Where B looks, A's own session sees A's markers: so a leak there would show (the check of
# B's answers is not passing for want of anything to find).
A_SEES_ITS_OWN = [
    ("sidebar", "/sidebar/banner"),
    ("sidebar", "/sidebar/view"),
    ("sidebar", "/sidebar/suggestions"),
    ("sidebar", "/sidebar/review"),
    ("sidebar", "/sidebar/orders"),
    ("console", "/console/rules"),
    ("console", "/console/rules/export"),
    ("console", "/console/catalog"),
    ("console", "/console/escalations"),
    ("console", "/console/deliveries"),
    ("console", "/console/personas"),
    ("console", "/console/guidance"),
    ("console", "/console/reviews"),
    ("console", "/console/reports"),
    ("console", "/console/reports.csv"),
]


@pytest.mark.parametrize(("kind", "path"), A_SEES_ITS_OWN)
def test_a_sees_its_own_markers_where_b_sees_none(
    sweep_app: Flask, world: World, kind: str, path: str
) -> None:
    client = sweep_app.test_client()
    if kind == "sidebar":
        bearer = world.sessions["a_sidebar"]
    else:
        page = console_launch(client, _token(world.a_key, world.a_audience, ADMIN))
        assert page.status_code == 200, page.get_data(as_text=True)
        bearer = session_token(page.get_data(as_text=True))
    query = {"ticket_id": world.ticket, "requester_id": world.requester} | CONSOLE_FORMS[
        "console_reports"
    ]
    answer = client.get(path, query_string=query, headers={"Authorization": f"Bearer {bearer}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert markers_in(answer.get_data(as_text=True)), f"A's {path} shows none of A's markers"
