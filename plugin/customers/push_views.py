"""The push API: a company's own systems send customers and orders as JSON batches.

`Authorization: Bearer <push token>` names the installation (`flask data push-token`). A
batch is stored whole or not at all: any bad record gets a 422 that lists every problem by
index and field, and nothing is stored. Sending the same batch again changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from plugin import db
from plugin.clock import utcnow
from plugin.customers import push_tokens
from plugin.customers.records import FieldProblem, customer_record, order_record
from plugin.customers.store import StoreResult, store_customers, store_orders
from plugin.domain.phones import region_or_default
from plugin.models import Installation

bp = Blueprint("push", __name__, url_prefix="/api/v1")

MAX_RECORDS = 1000
SOURCE = "push"
R = TypeVar("R")


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


@bp.errorhandler(ApiError)
def api_error(error: ApiError) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": error.message}
    if error.problems:
        body["problems"] = error.problems
    return jsonify(body), error.status


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[Response, int]:
    """Answer the API's clients in JSON, e.g. 413 for a body over the size limit."""
    return jsonify({"error": error.description}), error.code or 500


@bp.post("/customers")
def push_customers() -> Response:
    installation = _installation()
    region = region_or_default(installation.default_phone_region)
    records = _records("customers", functools.partial(customer_record, phone_region=region))
    session = db.session()
    result = store_customers(session, installation.id, records, now=utcnow())
    if result.problems:
        session.rollback()
        raise ApiError(422, "some customers name two customers at once", _problems(result))
    session.commit()
    return _stored(result)


@bp.post("/orders")
def push_orders() -> Response:
    installation = _installation()
    records = _records("orders", order_record)
    session = db.session()
    result = store_orders(session, installation.id, records, source=SOURCE, now=utcnow())
    if result.problems:
        session.rollback()
        raise ApiError(422, "some orders name customers that do not exist", _problems(result))
    session.commit()
    return _stored(result)


def _installation() -> Installation:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "send the installation's push token as Authorization: Bearer <token>")
    installation = push_tokens.installation_for(db.session(), token.strip())
    if installation is None:
        raise ApiError(401, "the push token is not valid")
    return installation


def _records(key: str, build: Callable[[Mapping[str, object]], R]) -> list[R]:
    if not request.is_json:
        raise ApiError(415, "send JSON with Content-Type: application/json")
    try:
        payload = request.get_json(silent=True)
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply to be a batch of records") from None
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise ApiError(400, f'the body must be a JSON object like {{"{key}": [...]}}')
    items = payload[key]
    if not items:
        raise ApiError(400, f"{key} is empty")
    if len(items) > MAX_RECORDS:
        raise ApiError(413, f"at most {MAX_RECORDS} {key} per request; split the batch")
    records: list[R] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append({"index": index, "field": None, "message": "must be a JSON object"})
            continue
        try:
            records.append(build(item))
        except FieldProblem as problem:
            problems.append({"index": index, "field": problem.field, "message": problem.message})
    if problems:
        raise ApiError(422, f"{len(problems)} of {len(items)} {key} are invalid", problems)
    return records


def _problems(result: StoreResult) -> list[dict[str, Any]]:
    return [
        {"index": index, "field": problem.field, "message": problem.message}
        for index, problem in result.problems
    ]


def _stored(result: StoreResult) -> Response:
    return jsonify(
        {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    )
