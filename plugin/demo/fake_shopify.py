"""A fake Shopify Admin GraphQL API for the gestures: tests, the fault bench and the demo.

`FakeShopifyEngine.handle` answers the documents plugin/gestures/shopify_documents.py sends
(the operation is the root field of the document; only variables are read), keeps the codes,
gift cards, refunds, draft orders and orders it knows in a `ShopStorage` (in memory, or a
database row for the demo), enforces Shopify's rules (a code is taken once, a refund never
above what is refundable, an unknown order or customer is refused, refundCreate needs its
idempotency key and answers a repeated key with the first refund), counts calls, and injects
faults (`Faults`): 5xx, THROTTLED with cost extensions, 429 with Retry-After, slow answers,
and answers lost after the write was made. bench/fake_shopify.py serves it over HTTP; the
demo hands it requests in-process (plugin/demo/fake_shopify_transport.py).
"""

from __future__ import annotations

import random
import re
import string
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from plugin.demo import fake_shopify_operations as operations

State = dict[str, Any]
ACCESS_TOKEN = "shpat_demo"  # noqa: S105 - the fake's own token, not a secret
SHOP_NAME = "Demo Coffee & Home"
_ROOT_FIELD = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)")
_IDEMPOTENCY = re.compile(r'@idempotent\(\s*key:\s*"([^"]*)"\s*\)')
RESTORE_RATE = 100.0
BUCKET = 2000.0
QUERY_COST = 10.0


def empty_state(currency: str = "USD") -> State:
    return {
        "currency": currency,
        "next_id": 1000,
        "customers": {},
        "orders": {},
        "discounts": {},
        "gift_cards": {},
        "refunds": {},
        "drafts": {},
        "idempotency": {},
    }


class ShopStorage(Protocol):
    """Where the fake shop keeps its state: `transaction` yields it, saving it on success."""

    def transaction(self) -> AbstractContextManager[State]: ...


class MemoryStorage:
    """The fake shop's state in memory, one request at a time (tests and the bench)."""

    def __init__(self, state: State | None = None) -> None:
        self._state = state if state is not None else empty_state()
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[State]:
        with self._lock:
            yield self._state


@dataclass
class Faults:
    """How often each fault strikes a call (0 to 1, tried in this order), and how they last.

    `lost_answer` strikes writes only: the write is made and its answer never arrives. `hang`
    makes the call (a write too) and answers only after `hang_seconds`. `only_writes` spares
    queries from every fault.
    """

    server_error: float = 0.0
    throttled: float = 0.0
    rate_limited: float = 0.0
    hang: float = 0.0
    lost_answer: float = 0.0
    hang_seconds: float = 30.0
    retry_after_seconds: float = 1.0
    only_writes: bool = False

    def __post_init__(self) -> None:
        rates = (self.server_error, self.throttled, self.rate_limited, self.hang, self.lost_answer)
        if any(not 0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("fault rates are between 0 and 1 and add up to at most 1")
        if self.hang_seconds < 0 or self.retry_after_seconds < 0:
            raise ValueError("fault durations are not negative")


@dataclass(frozen=True)
class FakeAnswer:
    """What the fake answers: status, JSON body and headers, after `delay_seconds`; `lost`
    means the call was made and its answer must never reach the client.
    """

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    lost: bool = False


class FakeShopifyEngine:
    """Answer GraphQL Admin API calls from a `ShopStorage`, with faults and counters."""

    def __init__(
        self,
        storage: ShopStorage | None = None,
        *,
        access_token: str = ACCESS_TOKEN,
        scopes: frozenset[str] = operations.ALL_SCOPES,
        faults: Faults | None = None,
        rng: random.Random | None = None,
        shop_name: str = SHOP_NAME,
    ) -> None:
        self.storage: ShopStorage = storage if storage is not None else MemoryStorage()
        self.access_token = access_token
        self.scopes = scopes
        self.faults = faults or Faults()
        self.shop_name = shop_name
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()

    # --- Seeding ------------------------------------------------------------------------

    def add_customer(self, customer_id: str, name: str) -> None:
        with self.storage.transaction() as state:
            state["customers"][customer_id] = {"id": customer_id, "name": name}

    def add_order(
        self,
        order_id: str,
        *,
        name: str,
        customer_id: str,
        total: Decimal,
        line_items: list[tuple[str, str, int]] | None = None,
        gateway: str = "shopify_payments",
    ) -> None:
        """Add a paid order; `line_items` are (line item id, variant id, quantity)."""
        with self.storage.transaction() as state:
            state["orders"][order_id] = operations.new_order(
                state,
                order_id,
                name=name,
                customer_id=customer_id,
                total=total,
                line_items=line_items or [],
                gateway=gateway,
            )

    # --- Answering ----------------------------------------------------------------------

    def handle(self, access_token: str | None, body: object) -> FakeAnswer:
        """Answer one POST to graphql.json: its token header and its JSON body."""
        if access_token != self.access_token:
            errors = "[API] Invalid API key or access token (unrecognized login or wrong password)"
            return FakeAnswer(401, {"errors": errors})
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return FakeAnswer(400, {"errors": {"query": "Required parameter missing or invalid"}})
        document = body["query"]
        variables = body.get("variables") or {}
        match = _ROOT_FIELD.search(document)
        operation = match.group(1) if match else ""
        write = document.lstrip().startswith("mutation")
        with self._lock:
            self.calls[operation] += 1
            fault = self._draw_fault(write)
        if fault is not None:
            self.faults_injected[fault] += 1
        early = self._early_fault(fault)
        if early is not None:
            return early
        key_match = _IDEMPOTENCY.search(document)
        answer = self._answer(operation, variables, key_match.group(1) if key_match else None)
        if fault == "hang":
            return FakeAnswer(answer.status, answer.body, delay_seconds=self.faults.hang_seconds)
        if fault == "lost_answer":
            return FakeAnswer(answer.status, answer.body, lost=True)
        return answer

    def _draw_fault(self, write: bool) -> str | None:
        faults = self.faults
        if faults.only_writes and not write:
            return None
        roll = self._rng.random()
        for name, rate in (
            ("server_error", faults.server_error),
            ("throttled", faults.throttled),
            ("rate_limited", faults.rate_limited),
            ("hang", faults.hang),
            ("lost_answer", faults.lost_answer if write else 0.0),
        ):
            if roll < rate:
                return name
            roll -= rate
        return None

    def _early_fault(self, fault: str | None) -> FakeAnswer | None:
        if fault == "server_error":
            return FakeAnswer(503, {"errors": "Service Unavailable (fake fault)"})
        if fault == "rate_limited":
            retry = f"{self.faults.retry_after_seconds:.1f}"
            return FakeAnswer(429, {"errors": "Throttled"}, headers={"Retry-After": retry})
        if fault == "throttled":
            cost = _cost(available=0.0)
            error = {"message": "Throttled", "extensions": {"code": "THROTTLED"}}
            return FakeAnswer(200, {"errors": [error], "extensions": cost})
        return None

    def _answer(self, operation: str, variables: object, key: str | None) -> FakeAnswer:
        handler = operations.HANDLERS.get(operation)
        if handler is None:
            error = {
                "message": f"Field '{operation}' doesn't exist on type 'QueryRoot'",
                "extensions": {"code": "undefinedField"},
            }
            return FakeAnswer(200, {"errors": [error]})
        missing = [scope for scope in operations.SCOPES[operation] if scope not in self.scopes]
        if missing:
            error = {
                "message": f"Access denied for {operation} field. Required access: "
                f"`{missing[0]}` access scope.",
                "extensions": {"code": "ACCESS_DENIED"},
            }
            return FakeAnswer(200, {"errors": [error], "data": None, "extensions": _cost()})
        if not isinstance(variables, dict):
            variables = {}
        context = operations.Context(
            shop_name=self.shop_name,
            scopes=self.scopes,
            idempotency_key=key,
            new_code=self._new_code,
        )
        with self.storage.transaction() as state:
            try:
                data = handler(state, variables, context)
            except operations.GraphQLError as error:
                body = {"errors": [{"message": str(error), "extensions": {"code": error.code}}]}
                return FakeAnswer(200, body)
        return FakeAnswer(200, {"data": data, "extensions": _cost()})

    def _new_code(self) -> str:
        with self._lock:
            alphabet = string.ascii_lowercase + string.digits
            return "".join(self._rng.choice(alphabet) for _ in range(16))

    # --- What was given, for tests, the bench and the demo shop page ---------------------

    def snapshot(self) -> State:
        """A copy of the state: customers, orders, discounts, gift cards, refunds, drafts."""
        with self.storage.transaction() as state:
            return operations.copy_state(state)


def _cost(available: float = BUCKET - QUERY_COST) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": QUERY_COST,
            "actualQueryCost": QUERY_COST if available > 0 else None,
            "throttleStatus": {
                "maximumAvailable": BUCKET,
                "currentlyAvailable": available,
                "restoreRate": RESTORE_RATE,
            },
        }
    }
