"""Installations: the helpdesk accounts that run Regulars, their credentials and field mappings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from plugin.clock import utcnow
from plugin.models.base import Base


class Installation(Base):
    """One helpdesk account that runs Regulars; every other row belongs to exactly one."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("platform", "account"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    account: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    # None means the platform's own API host; tests and benchmarks point it at a local fake.
    api_base_url: Mapped[str | None] = mapped_column(String(500))
    app_installation_id: Mapped[str | None] = mapped_column(String(64))
    # The app's id in the helpdesk's marketplace; Zendesk serves its public key under it.
    app_id: Mapped[str | None] = mapped_column(String(64))
    token_audience: Mapped[str | None] = mapped_column(String(500), unique=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    public_key_fetched_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Encrypted by the credentials store; never rendered or logged.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    # The optional Shopify source: the store (acme.myshopify.com) and, encrypted like the
    # helpdesk credentials, its Admin API access token. Never rendered or logged.
    shopify_shop: Mapped[str | None] = mapped_column(String(255))
    shopify_credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the token the company's own systems push customer data with.
    push_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # SHA-256 of the secret a Freshdesk installation's app sends in a header, and of the one it
    # replaced while a rotation is under way (valid until the expiry). Never the secrets.
    freshdesk_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    freshdesk_previous_secret_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    freshdesk_previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    tier_medium_min_orders: Mapped[int] = mapped_column(Integer, default=3)
    tier_medium_min_spend_cents: Mapped[int] = mapped_column(BigInteger, default=25_000)
    tier_high_min_orders: Mapped[int] = mapped_column(Integer, default=12)
    tier_high_min_spend_cents: Mapped[int] = mapped_column(BigInteger, default=150_000)
    # Where a phone number without a leading + is read (ISO 3166 alpha-2); None: "US".
    # See `plugin/domain/phones.py`; set with `flask data phone-region`.
    default_phone_region: Mapped[str | None] = mapped_column(String(2))
    # The helpdesk roles (names or ids, as an admin typed them) whose users are supervisors in
    # the console; None or empty: admins only. See `plugin/console/roles.py`.
    supervisor_roles: Mapped[list[str] | None] = mapped_column(JSON)
    # Counts every committed change to what the compiled rule book is built from (rules and
    # their versions, the catalog, personas, fact mappings): see `_count_rule_book_changes`
    # in `plugin/models/goodwill.py`.
    rule_book_revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Installation {self.id} {self.platform}:{self.account}>"


class FieldMapping(Base):
    """Read one helpdesk user field, organization field or tag as a customer fact."""

    __tablename__ = "field_mappings"
    __table_args__ = (UniqueConstraint("installation_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    # "user_field", "organization_field" or "tag" (a tag maps to a true/false fact).
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    fact_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
