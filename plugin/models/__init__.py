"""SQLAlchemy models: installations and the customer data each one owns, one module per area.

Every model is imported here, so `Base.metadata` (which the migrations compare against) holds
every table and each model's flush hooks are registered; import models from this package.
"""

from plugin.models.base import Base
from plugin.models.connect import OAuthConnectState
from plugin.models.customers import (
    Customer,
    CustomerFact,
    CustomerSegment,
    Order,
    Persona,
    SegmentBaseline,
    SegmentGuidance,
)
from plugin.models.delivery import Delivery, DeliveryLease
from plugin.models.demo import DemoNote, DemoShopState, DemoTicket, DemoUser
from plugin.models.effects import RuleExposure, TicketRating
from plugin.models.events import EventDelivery, EventSource, SnapshotRefresh
from plugin.models.gestures import Gesture, GestureKindSetting
from plugin.models.goodwill import Action, ExceptionType, Rule, RuleVersion, SegmentBudget
from plugin.models.installations import FieldMapping, Installation
from plugin.models.launches import LaunchTokenUse
from plugin.models.masking import FieldMask
from plugin.models.privacy import DataErasure
from plugin.models.reviews import AccountReview, ReviewCheck, ReviewItem, ReviewTemplate
from plugin.models.sidebar import SeenTicket, SharedCacheEntry

__all__ = [
    "AccountReview",
    "Action",
    "Base",
    "Customer",
    "CustomerFact",
    "CustomerSegment",
    "DataErasure",
    "Delivery",
    "DeliveryLease",
    "DemoNote",
    "DemoShopState",
    "DemoTicket",
    "DemoUser",
    "EventDelivery",
    "EventSource",
    "ExceptionType",
    "FieldMapping",
    "FieldMask",
    "Gesture",
    "GestureKindSetting",
    "Installation",
    "LaunchTokenUse",
    "OAuthConnectState",
    "Order",
    "Persona",
    "ReviewCheck",
    "ReviewItem",
    "ReviewTemplate",
    "Rule",
    "RuleExposure",
    "RuleVersion",
    "SeenTicket",
    "SegmentBaseline",
    "SegmentBudget",
    "SegmentGuidance",
    "SharedCacheEntry",
    "SnapshotRefresh",
    "TicketRating",
]
