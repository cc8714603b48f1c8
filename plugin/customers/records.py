"""Customer and order records as a company's systems send them, validated field by field.

CSV files and the push API both arrive here as loose mappings of field names to values; a
record comes out whole or not at all, with a `FieldProblem` naming the field and the reason.

An order may say where it stands, each optional, from a closed vocabulary (Shopify's names,
lower-cased, so a shop's orders and imported ones read alike):
- `status` (payment): pending, authorized, paid, partially_paid, partially_refunded,
  refunded, voided;
- `fulfillment_status`: unfulfilled, partial, fulfilled, returned;
- `tracking_url`: an http(s) link to the carrier's tracking page;
- `item_count`: how many items (the quantities summed).
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from plugin.clock import utcnow
from plugin.domain.phones import NotAPhoneNumber, phone_key

MAX_ID = 64
MAX_NAME = 255
MAX_EMAIL = 320
MAX_LABEL = 100
MAX_CODE = 64
MAX_AMOUNT_CENTS = 10**12  # ten billion in currency units: anything above is a typo

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Control characters (a line break, a NUL) and lone surrogates, which no database stores.
_UNSAFE = re.compile("[\x00-\x1f\ud800-\udfff]")

PAYMENT_STATUSES = frozenset(
    {"pending", "authorized", "paid", "partially_paid", "partially_refunded", "refunded", "voided"}
)
FULFILLMENT_STATUSES = frozenset({"unfulfilled", "partial", "fulfilled", "returned"})
MAX_URL = 2048
MAX_ITEM_COUNT = 100_000
# Dates before this are typos (0001-01-01, 1019 for 2019); later than tomorrow, in the future.
EARLIEST = datetime(1900, 1, 1)


class FieldProblem(ValueError):
    """One field of a record is missing or unusable."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CustomerRecord:
    external_id: str
    name: str
    email: str | None = None
    phone: str | None = None
    helpdesk_user_id: str | None = None
    customer_since: date | None = None


@dataclass(frozen=True)
class OrderRecord:
    external_id: str
    # The customer is named by the company's id, or else by email.
    customer_external_id: str | None
    customer_email: str | None
    placed_at: datetime
    amount_cents: int
    discount_code: str | None = None
    category: str | None = None
    status: str | None = None
    fulfillment_status: str | None = None
    tracking_url: str | None = None
    item_count: int | None = None


# An order's values in `OrderRecord`'s field order: what a bulk import carries from a line to
# its row (a tuple pickles and unpickles between processes several times cheaper).
OrderRow = tuple[
    str, str | None, str | None, datetime, int, str | None, str | None,
    str | None, str | None, str | None, int | None,
]  # fmt: skip


def normalize_email(value: str) -> str:
    return value.strip().lower()


def customer_record(fields: Mapping[str, object], *, phone_region: str) -> CustomerRecord:
    """Build a customer from its fields; raise FieldProblem for the first bad one.

    The phone is stored in E.164, read in the installation's `phone_region` ("US") when it
    has no leading `+`; one that is not a possible number there is refused, never guessed.
    """
    external_id = _required_text(fields, "customer_id", MAX_ID)
    name = _required_text(fields, "name", MAX_NAME)
    email = _optional_text(fields, "email", MAX_EMAIL)
    if email is not None:
        email = normalize_email(email)
        if not _EMAIL.fullmatch(email):
            raise FieldProblem("email", f"{email!r} is not an email address")
    phone = _optional_text(fields, "phone", 32)
    if phone is not None:
        try:
            phone = phone_key(phone, phone_region)
        except NotAPhoneNumber as problem:
            raise FieldProblem("phone", str(problem)) from None
    return CustomerRecord(
        external_id=external_id,
        name=name,
        email=email,
        phone=phone,
        helpdesk_user_id=_optional_text(fields, "helpdesk_user_id", MAX_ID),
        customer_since=_optional_date(fields, "customer_since"),
    )


def order_record(fields: Mapping[str, object]) -> OrderRecord:
    """Build an order from its fields; raise FieldProblem for the first bad one."""
    customer_id = _optional_text(fields, "customer_id", MAX_ID)
    email = _optional_text(fields, "customer_email", MAX_EMAIL)
    if customer_id is None and email is None:
        raise FieldProblem("customer_id", "name the customer by customer_id or customer_email")
    return OrderRecord(
        external_id=_required_text(fields, "order_id", MAX_ID),
        customer_external_id=customer_id,
        customer_email=normalize_email(email) if email is not None else None,
        placed_at=_required_datetime(fields, "placed_at"),
        amount_cents=_amount_cents(fields),
        discount_code=_optional_text(fields, "discount_code", MAX_CODE),
        category=_optional_text(fields, "category", MAX_LABEL),
        status=order_status(fields, "status", PAYMENT_STATUSES),
        fulfillment_status=order_status(fields, "fulfillment_status", FULFILLMENT_STATUSES),
        tracking_url=tracking_url(_optional_text(fields, "tracking_url", MAX_URL)),
        item_count=_item_count(fields),
    )


def order_row(fields: Mapping[str, object]) -> OrderRow:
    """`order_record`'s values as an `OrderRow`; the same refusals (`FieldProblem`).

    A line of plain text (a CSV row, the usual case) is read here without `order_record`'s
    objects and regular expressions; anything this shortcut is not sure of, `order_record`
    decides, so it defines every value and every refusal.
    """
    row = _plain_order_row(fields)
    if row is None:
        return order_row_of(order_record(fields))
    return row


def order_row_of(record: OrderRecord) -> OrderRow:
    return _ORDER_ROW(record)


_ORDER_ROW = operator.attrgetter(*(field.name for field in dataclasses.fields(OrderRecord)))
# What the shortcut takes for an amount (in units, at most two decimals) and a count.
_PLAIN_AMOUNT = re.compile(r"\d{1,12}(?:\.\d{1,2})?")
_latest_plausible: list[datetime] = [EARLIEST]


def _plain_order_row(fields: Mapping[str, object]) -> OrderRow | None:
    """The order's values if every field is plain (printable text within its limits, a
    date without a time zone, an amount like 12.50); None: ask `order_record`."""
    values: dict[str, str | None] = {}
    for name, limit in _PLAIN_LIMITS.items():
        value = fields.get(name)
        if value is None:
            values[name] = None
            continue
        if type(value) is not str or not value.isprintable():
            return None
        text = value.strip()
        if len(text) > limit:
            return None
        values[name] = text or None
    customer_id, email, placed = (
        values["customer_id"],
        values["customer_email"],
        values["placed_at"],
    )
    external_id = values["order_id"]
    if external_id is None or placed is None or (customer_id is None and email is None):
        return None
    if "Z" in placed or (values["item_count"] is None and fields.get("item_count")):
        return None  # a time zone; a count of blanks (refused)
    try:
        placed_at = datetime.fromisoformat(placed)
    except ValueError:
        return None
    if placed_at.tzinfo is not None or placed_at < EARLIEST:
        return None
    if placed_at > _latest_plausible[0]:
        # Later than tomorrow as last measured: measure again (the clock only moves on).
        _latest_plausible[0] = utcnow() + timedelta(days=1)
        if placed_at > _latest_plausible[0]:
            return None
    cents = _plain_cents(fields, values["amount"])
    if cents is None:
        return None
    statuses: list[str | None] = []
    for name, vocabulary in (
        ("status", PAYMENT_STATUSES),
        ("fulfillment_status", FULFILLMENT_STATUSES),
    ):
        status = values[name]
        if status is not None:
            status = status.lower()
            if status not in vocabulary:
                return None
        statuses.append(status)
    link = values["tracking_url"]
    if link is not None:
        try:
            link = tracking_url(link)
        except FieldProblem:
            return None
    count = values["item_count"]
    items = None
    if count is not None:
        if not (count.isascii() and count.isdigit()) or int(count) > MAX_ITEM_COUNT:
            return None
        items = int(count)
    return (
        external_id,
        customer_id,
        email.lower() if email is not None else None,
        placed_at,
        cents,
        values["discount_code"],
        values["category"],
        statuses[0],
        statuses[1],
        link,
        items,
    )


def _plain_cents(fields: Mapping[str, object], amount: str | None) -> int | None:
    """`_amount_cents` for a plain `amount_cents` or `amount`; None: not plain."""
    raw = fields.get("amount_cents")
    if raw is not None and raw != "":
        if type(raw) is not str or not (raw.isascii() and raw.isdigit()):
            return None
        cents = int(raw)
    else:
        if amount is None or not amount.isascii() or not _PLAIN_AMOUNT.fullmatch(amount):
            return None
        units, _point, hundredths = amount.partition(".")
        cents = int(units) * 100 + int(hundredths.ljust(2, "0"))
    return cents if cents <= MAX_AMOUNT_CENTS else None


def order_status(fields: Mapping[str, object], name: str, vocabulary: frozenset[str]) -> str | None:
    """The field's status, lower-cased with `_` for spaces and dashes, if it is one we know."""
    text = _optional_text(fields, name, 40)
    if text is None:
        return None
    status = re.sub(r"[\s-]+", "_", text.lower())
    if status not in vocabulary:
        raise FieldProblem(name, f"{text!r} is not one of {', '.join(sorted(vocabulary))}")
    return status


def tracking_url(text: str | None) -> str | None:
    """An http(s) link with a host, or None; anything else (javascript:, ftp:) is refused."""
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in text:
        raise FieldProblem("tracking_url", "must be an http:// or https:// link")
    return text


_PLAIN_LIMITS = {
    "customer_id": MAX_ID,
    "customer_email": MAX_EMAIL,
    "order_id": MAX_ID,
    "placed_at": 40,
    "amount": 40,
    "discount_code": MAX_CODE,
    "category": MAX_LABEL,
    "status": 40,
    "fulfillment_status": 40,
    "tracking_url": MAX_URL,
    "item_count": 40,
}


def _item_count(fields: Mapping[str, object]) -> int | None:
    raw = fields.get("item_count")
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise FieldProblem("item_count", "must be a whole number")
    try:
        count = int(str(raw).strip())
    except ValueError:
        raise FieldProblem("item_count", "must be a whole number") from None
    if not 0 <= count <= MAX_ITEM_COUNT:
        raise FieldProblem("item_count", f"must be 0 to {MAX_ITEM_COUNT}")
    return count


def _optional_text(fields: Mapping[str, object], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FieldProblem(name, "must be text")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > limit:
        raise FieldProblem(name, f"is longer than {limit} characters")
    unsafe = _UNSAFE.search(text)
    if unsafe is not None:
        if unsafe.group() < " ":
            raise FieldProblem(name, "holds control characters")
        raise FieldProblem(name, "is not valid Unicode text (a lone surrogate)")
    return text


def _required_text(fields: Mapping[str, object], name: str, limit: int) -> str:
    text = _optional_text(fields, name, limit)
    if text is None:
        raise FieldProblem(name, "is required")
    return text


def _optional_date(fields: Mapping[str, object], name: str) -> date | None:
    text = _optional_text(fields, name, 40)
    if text is None:
        return None
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        raise FieldProblem(name, f"{text!r} is not a date like 2024-03-31") from None
    _plausible(name, text, datetime.combine(day, time()))
    return day


def _required_datetime(fields: Mapping[str, object], name: str) -> datetime:
    text = _required_text(fields, name, 40)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldProblem(
            name, f"{text!r} is not a date or time like 2024-03-31 or 2024-03-31T14:05:00Z"
        ) from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
            raise FieldProblem(name, f"{text!r} is out of the calendar's range") from None
    _plausible(name, text, moment)
    return moment


def _plausible(name: str, text: str, moment: datetime) -> None:
    """Refuse a date before EARLIEST or later than tomorrow (allowing for time zones)."""
    if moment < EARLIEST:
        raise FieldProblem(name, f"{text!r} is before {EARLIEST.year}: a typo?")
    if moment > utcnow() + timedelta(days=1):
        raise FieldProblem(name, f"{text!r} is in the future")


def _amount_cents(fields: Mapping[str, object]) -> int:
    """Read `amount` in currency units (12.50) or `amount_cents` (1250)."""
    if fields.get("amount_cents") not in (None, ""):
        raw = fields["amount_cents"]
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise FieldProblem("amount_cents", "must be a whole number of cents")
        try:
            cents = int(str(raw).strip())
        except ValueError:
            raise FieldProblem("amount_cents", "must be a whole number of cents") from None
        return _bounded(cents, "amount_cents")
    raw = fields.get("amount")
    if raw is None or raw == "":
        raise FieldProblem("amount", "is required (or give amount_cents)")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise FieldProblem("amount", "must be a number such as 12.50")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise FieldProblem("amount", f"{raw!r} is not a number such as 12.50") from None
    if not amount.is_finite():
        raise FieldProblem("amount", "must be a finite number")
    exact_cents = amount * 100
    if exact_cents != exact_cents.to_integral_value():
        raise FieldProblem("amount", "has more than two decimal places")
    return _bounded(int(exact_cents), "amount")


def _bounded(cents: int, name: str) -> int:
    if cents < 0:
        raise FieldProblem(name, "must not be negative (import refunds as their own records)")
    if cents > MAX_AMOUNT_CENTS:
        raise FieldProblem(name, "is implausibly large")
    return cents
