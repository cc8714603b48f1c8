"""The push API: token auth, whole-batch validation with every problem listed, idempotency."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from plugin.customers import push_tokens
from plugin.models import Customer, Installation, Order


@pytest.fixture
def installation(session: Session) -> Installation:
    installation = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(installation)
    session.commit()
    return installation


@pytest.fixture
def token(session: Session, installation: Installation) -> str:
    issued = push_tokens.issue(installation)
    session.commit()
    return issued


def push(client: FlaskClient, path: str, token: str, body: Any):
    return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


CUSTOMERS = {
    "customers": [
        {"customer_id": "C-1", "name": "Priya Raman", "email": "priya@example.com"},
        {"customer_id": "C-2", "name": "Walter Huang", "phone": "+15555550102"},
    ]
}
ORDERS = {
    "orders": [
        {"order_id": "O-1", "customer_id": "C-1", "placed_at": "2026-11-01", "amount": 12.5},
        {
            "order_id": "O-2",
            "customer_email": "priya@example.com",
            "placed_at": "2026-11-02",
            "amount_cents": 800,
            "discount_code": "WELCOME10",
        },
    ]
}


def test_customers_and_orders_are_stored_and_a_repeat_changes_nothing(
    client: FlaskClient, token: str, session: Session
) -> None:
    assert push(client, "/api/v1/customers", token, CUSTOMERS).get_json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    assert push(client, "/api/v1/orders", token, ORDERS).get_json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    assert push(client, "/api/v1/orders", token, ORDERS).get_json() == {
        "created": 0,
        "updated": 0,
        "unchanged": 2,
    }
    assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 2


def test_a_bad_batch_lists_every_problem_and_stores_nothing(
    client: FlaskClient, token: str, session: Session
) -> None:
    body = {
        "customers": [
            {"customer_id": "C-1", "name": "Fine"},
            {"customer_id": "C-2", "email": "nope"},
            "not an object",
        ]
    }
    response = push(client, "/api/v1/customers", token, body)
    assert response.status_code == 422
    assert response.get_json()["problems"] == [
        {"index": 1, "field": "name", "message": "is required"},
        {"index": 2, "field": None, "message": "must be a JSON object"},
    ]
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_orders_for_unknown_customers_are_refused_whole(
    client: FlaskClient, token: str, session: Session
) -> None:
    push(client, "/api/v1/customers", token, CUSTOMERS)
    body = {
        "orders": [
            ORDERS["orders"][0],
            {**ORDERS["orders"][0], "order_id": "O-9", "customer_id": "C-404"},
        ]
    }
    response = push(client, "/api/v1/orders", token, body)
    assert response.status_code == 422
    assert response.get_json()["problems"] == [
        {
            "index": 1,
            "field": "customer_id",
            "message": "no customer 'C-404': add the customer first",
        }
    ]
    assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_orders_push_their_status_and_tracking_and_a_bad_status_is_refused_with_a_reason(
    client: FlaskClient, token: str, session: Session
) -> None:
    push(client, "/api/v1/customers", token, CUSTOMERS)
    shipped = {
        **ORDERS["orders"][0],
        "status": "paid",
        "fulfillment_status": "partial",
        "tracking_url": "https://tracking.example.com/1Z9",
        "item_count": 4,
    }
    bad = {**ORDERS["orders"][1], "status": "lost", "tracking_url": "data:text/html,hi"}
    refused = push(client, "/api/v1/orders", token, {"orders": [shipped, bad]})
    assert refused.status_code == 422
    assert refused.get_json()["problems"] == [
        {
            "index": 1,
            "field": "status",
            "message": "'lost' is not one of authorized, paid, partially_paid, "
            "partially_refunded, pending, refunded, voided",
        }
    ]
    assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0

    assert push(client, "/api/v1/orders", token, {"orders": [shipped]}).status_code == 200
    stored = session.scalars(sa.select(Order)).one()
    assert (stored.status, stored.fulfillment_status, stored.tracking_url, stored.item_count) == (
        "paid",
        "partial",
        "https://tracking.example.com/1Z9",
        4,
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer rgp_wrong"}, 401),
        ({"Authorization": "Basic abc"}, 401),
    ],
)
def test_without_a_valid_token_nothing_happens(
    client: FlaskClient, installation: Installation, headers: dict[str, str], status: int
) -> None:
    response = client.post("/api/v1/customers", json=CUSTOMERS, headers=headers)
    assert response.status_code == status
    assert "error" in response.get_json()


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        (
            {"data": "customer_id=C-1", "content_type": "application/x-www-form-urlencoded"},
            415,
            "JSON",
        ),
        ({"data": "{not json", "content_type": "application/json"}, 400, "JSON object"),
        ({"json": {"customers": []}}, 400, "empty"),
        ({"json": [1, 2]}, 400, "JSON object"),
        ({"json": {"customers": [{"customer_id": "C", "name": "N"}] * 1001}}, 413, "at most 1000"),
    ],
)
def test_malformed_requests_get_a_clear_4xx(
    client: FlaskClient, token: str, kwargs: dict[str, Any], status: int, words: str
) -> None:
    response = client.post(
        "/api/v1/customers", headers={"Authorization": f"Bearer {token}"}, **kwargs
    )
    assert response.status_code == status
    assert words in response.get_json()["error"]


def test_a_body_over_the_size_limit_is_a_413_in_json(
    app: Flask, client: FlaskClient, token: str
) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    big = {"customers": [{"customer_id": f"C-{n}", "name": "x" * 50} for n in range(100)]}
    response = push(client, "/api/v1/customers", token, big)
    assert response.status_code == 413
    assert "error" in response.get_json()


def test_a_token_only_reaches_its_own_installation(
    client: FlaskClient, session: Session, token: str, installation: Installation
) -> None:
    other = Installation(platform="zendesk", account="other", display_name="Other")
    session.add(other)
    session.commit()
    push(client, "/api/v1/customers", token, CUSTOMERS)
    owners = set(session.scalars(sa.select(Customer.installation_id)))
    assert owners == {installation.id}


def test_a_new_token_replaces_the_old_one(
    client: FlaskClient, session: Session, token: str, installation: Installation
) -> None:
    installation = session.merge(installation)
    push_tokens.issue(installation)
    session.commit()
    assert push(client, "/api/v1/customers", token, CUSTOMERS).status_code == 401


def test_the_cli_issues_a_token_that_works(
    runner: FlaskCliRunner, client: FlaskClient, installation: Installation
) -> None:
    result = runner.invoke(args=["data", "push-token", "--installation", "acme"])
    assert result.exit_code == 0, result.output
    issued = result.output.strip().splitlines()[-1]
    assert issued.startswith("rgp_")
    assert push(client, "/api/v1/customers", issued, CUSTOMERS).status_code == 200


def test_the_cli_imports_a_csv_and_lists_refused_lines(
    runner: FlaskCliRunner, installation: Installation, tmp_path: Any
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "\ufeffcustomer_id,name,email\nC-1,Priya,priya@example.com\nC-2,,x@example.com\n"
    )
    result = runner.invoke(
        args=["data", "import", "customers", str(path), "--installation", "zendesk:acme"]
    )
    assert result.exit_code == 1
    assert "2 customers rows: 1 added, 0 updated, 0 unchanged, 1 refused" in result.output
    assert "line 3: name: is required" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nPriya\n")
    result = runner.invoke(args=["data", "import", "customers", str(bad), "--installation", "acme"])
    assert result.exit_code == 2 and "nothing was imported" in result.output
    result = runner.invoke(
        args=["data", "import", "customers", str(path), "--installation", "nope"]
    )
    assert result.exit_code == 2 and "no installation is named 'nope'" in result.output
