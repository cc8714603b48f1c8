"""Deterministic sample customers, orders and tickets for the demo helpdesk.

The demo shop, Kettle & Quill, sells coffee, kitchen and home goods online, plus office
supplies that small businesses reorder almost daily. Prices are in US cents.

Each sample customer is written for one story (segment): a high-value regular, a seasonal
gift shopper, a café that orders every working day, a lapsed loyalist, a prospect with no
orders yet, and so on. Their order histories are generated so that someone reading them,
or the default tier thresholds (medium: 3+ orders or $250+ in the trailing 12 months;
high: 12+ orders and $1,500+), would put them in the intended segment. Every date is
relative to ``today`` and every random draw comes from a ``random.Random`` seeded with a
fixed string per customer, so the same day always gives the same data, and another day
gives the same people with their dates shifted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple


@dataclass(frozen=True)
class SampleOrder:
    """One order; `external_id` ("ORD-10234") numbers all orders in the order they came in."""

    external_id: str
    placed_at: datetime
    amount_cents: int
    discount_code: str | None
    category: str
    # Where it stands: all paid; shipped after three days, with tracking for two months.
    status: str = "paid"
    fulfillment_status: str | None = None
    tracking_url: str | None = None
    item_count: int | None = None


@dataclass(frozen=True)
class SampleCustomer:
    """A helpdesk end user; `story` is one of `STORIES`, `orders` are oldest first.

    Emails use the example.com/.org/.net domains, phones the fictional +1 555-555-01xx range.
    """

    helpdesk_user_id: str
    name: str
    email: str
    phone: str | None
    customer_since: date
    story: str
    orders: tuple[SampleOrder, ...]
    # Set for a customer the store knows only by phone (from its phone orders), under this
    # name and with no email or helpdesk id: the sidebar can match them by phone alone.
    phone_only_store_name: str | None = None


@dataclass(frozen=True)
class SampleAgent:
    """A helpdesk agent; `role` is "agent" or "admin" (the support lead), as in Zendesk."""

    helpdesk_user_id: str
    name: str
    email: str
    role: str


@dataclass(frozen=True)
class SampleTicket:
    """A ticket with Zendesk's vocabulary for channel (email, chat, voice), status, priority and
    type; `external_id` grows with `created_at`.
    """

    external_id: str
    requester_user_id: str
    subject: str
    description: str
    channel: str
    status: str
    priority: str
    ticket_type: str
    tags: tuple[str, ...]
    assignee_user_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SampleData:
    """The whole data set; tickets newest first. All datetimes are naive UTC, before `today`."""

    customers: tuple[SampleCustomer, ...]
    agents: tuple[SampleAgent, ...]
    tickets: tuple[SampleTicket, ...]


STORIES = (
    "high",
    "medium",
    "low",
    "seasonal",
    "small_business",
    "deal_seeker",
    "new",
    "lapsed",
    "prospect",
)
CATEGORIES = (
    "Coffee beans",
    "Coffee gear",
    "Tea",
    "Kitchen",
    "Tableware",
    "Home goods",
    "Office supplies",
    "Garden",
    "Gift sets",
)

_SEED = "kettle-and-quill-demo-v1"
# Jordan bought a hose nozzle by phone and calls about it: the store has only that number.
_PHONE_ONLY_STORE_NAMES = {"jordan": "J. Pike (phone order)"}


class _Person(NamedTuple):
    key: str
    story: str
    name: str
    email: str
    phone: int | None  # last two digits of the fictional +1 555-555-01xx range
    years: float  # tenure; new customers and prospects get theirs from their story
    favourites: tuple[str, ...]


_PEOPLE = (
    _Person(
        "margaret",
        "high",
        "Margaret Okafor",
        "margaret.okafor@example.com",
        1,
        9.3,
        ("Coffee beans", "Coffee gear", "Kitchen"),
    ),
    _Person(
        "daniel",
        "high",
        "Daniel Whitfield",
        "dan.whitfield@example.net",
        2,
        7.1,
        ("Kitchen", "Home goods"),
    ),
    _Person(
        "priya",
        "high",
        "Priya Raman",
        "priya.raman@example.org",
        None,
        5.4,
        ("Tea", "Coffee beans"),
    ),
    _Person(
        "tomasz",
        "high",
        "Tomasz Kowalczyk",
        "t.kowalczyk@example.com",
        3,
        4.2,
        ("Coffee gear", "Office supplies"),
    ),
    _Person(
        "aiko",
        "high",
        "Aiko Brooks",
        "aiko.brooks@example.net",
        4,
        9.8,
        ("Tea", "Tableware", "Home goods"),
    ),
    _Person(
        "grace",
        "high",
        "Grace Mensah",
        "grace.mensah@example.org",
        5,
        3.4,
        ("Garden", "Home goods"),
    ),
    _Person(
        "luis",
        "medium",
        "Luis Herrera",
        "luis.herrera@example.com",
        6,
        4.5,
        ("Home goods", "Kitchen"),
    ),
    _Person(
        "hannah",
        "medium",
        "Hannah Lindqvist",
        "hannah.lindqvist@example.org",
        None,
        2.3,
        ("Tea", "Tableware"),
    ),
    _Person(
        "omar",
        "medium",
        "Omar Haddad",
        "omar.haddad@example.net",
        7,
        5.6,
        ("Coffee beans", "Coffee gear"),
    ),
    _Person(
        "chloe",
        "medium",
        "Chloé Dubois",
        "chloe.dubois@example.com",
        None,
        1.8,
        ("Coffee gear", "Kitchen"),
    ),
    _Person(
        "marcus",
        "medium",
        "Marcus Bell",
        "marcus.bell@example.org",
        8,
        3.1,
        ("Office supplies", "Coffee beans"),
    ),
    _Person(
        "nadia",
        "medium",
        "Nadia Petrova",
        "nadia.petrova@example.com",
        None,
        2.7,
        ("Kitchen", "Tableware", "Home goods"),
    ),
    _Person(
        "samuel",
        "medium",
        "Samuel Adeyemi",
        "samuel.adeyemi@example.net",
        9,
        6.0,
        ("Coffee beans", "Kitchen"),
    ),
    _Person(
        "isabel",
        "medium",
        "Isabel Moreno",
        "isabel.moreno@example.com",
        10,
        1.6,
        ("Garden", "Home goods"),
    ),
    _Person(
        "kevin", "low", "Kevin O'Brien", "kevin.obrien@example.com", None, 2.2, ("Office supplies",)
    ),
    _Person(
        "fatima",
        "low",
        "Fatima Benali",
        "fatima.benali@example.org",
        11,
        1.4,
        ("Tableware", "Home goods"),
    ),
    _Person("ethan", "low", "Ethan Walsh", "ethan.walsh@example.net", None, 3.0, ("Coffee beans",)),
    _Person(
        "meilin", "low", "Mei Lin Zhou", "meilin.zhou@example.com", 12, 1.3, ("Tea", "Tableware")
    ),
    _Person("rafael", "low", "Rafael Costa", "rafael.costa@example.org", None, 4.1, ("Kitchen",)),
    _Person("jordan", "low", "Jordan Pike", "jordan.pike@example.com", 13, 2.0, ("Garden",)),
    _Person(
        "aaliyah",
        "low",
        "Aaliyah Turner",
        "aaliyah.turner@example.net",
        None,
        1.2,
        ("Home goods", "Gift sets"),
    ),
    _Person("henrik", "low", "Henrik Olsen", "henrik.olsen@example.com", 14, 2.6, ("Coffee gear",)),
    _Person(
        "beatrice",
        "seasonal",
        "Beatrice Hollis",
        "beatrice.hollis@example.org",
        15,
        6.2,
        ("Gift sets", "Tableware", "Coffee beans"),
    ),
    _Person(
        "victor",
        "seasonal",
        "Victor Nakamura",
        "victor.nakamura@example.com",
        None,
        4.8,
        ("Gift sets", "Coffee beans"),
    ),
    _Person(
        "beanthere",
        "small_business",
        "Bean There Café",
        "beanthere-cafe@example.com",
        16,
        3.2,
        ("Coffee beans", "Tableware", "Kitchen"),
    ),
    _Person(
        "brightside",
        "small_business",
        "Brightside Dental Studio",
        "brightside-dental@example.com",
        17,
        2.4,
        ("Office supplies", "Coffee beans", "Home goods"),
    ),
    _Person(
        "tyler",
        "deal_seeker",
        "Tyler Brennan",
        "tyler.brennan@example.net",
        None,
        2.9,
        ("Coffee gear", "Kitchen", "Home goods"),
    ),
    _Person(
        "carmen",
        "deal_seeker",
        "Carmen Vásquez",
        "carmen.vasquez@example.org",
        18,
        3.6,
        ("Kitchen", "Tableware"),
    ),
    _Person(
        "noah",
        "new",
        "Noah Fischer",
        "noah.fischer@example.com",
        None,
        0,
        ("Coffee gear", "Coffee beans"),
    ),
    _Person(
        "amara", "new", "Amara Nwosu", "amara.nwosu@example.org", 19, 0, ("Home goods", "Garden")
    ),
    _Person(
        "walter",
        "lapsed",
        "Walter Huang",
        "walter.huang@example.net",
        20,
        7.5,
        ("Coffee beans", "Tea"),
    ),
    _Person(
        "ingrid",
        "lapsed",
        "Ingrid Sørensen",
        "ingrid.sorensen@example.com",
        None,
        6.4,
        ("Kitchen", "Tableware"),
    ),
    _Person(
        "ravi", "prospect", "Ravi Desai", "ravi.desai@example.com", 21, 0, ("Office supplies",)
    ),
    _Person(
        "elena", "prospect", "Elena Popescu", "elena.popescu@example.net", None, 0, ("Coffee gear",)
    ),
)

_AGENTS = (
    SampleAgent("80001", "Sam Carter", "sam.carter@example.com", "agent"),
    SampleAgent("80002", "Lena Ortiz", "lena.ortiz@example.com", "agent"),
    SampleAgent("80003", "Jamal Wright", "jamal.wright@example.com", "agent"),
    SampleAgent("80004", "Diane Foster", "diane.foster@example.com", "admin"),
)


class _Ticket(NamedTuple):
    key: str
    when: int | str  # days ago, or "gift_season" / "last_order" (see _ticket_day)
    channel: str
    status: str
    priority: str
    ticket_type: str
    tags: str
    subject: str
    description: str  # "{order}" becomes the requester's latest order number


_TICKETS = (
    _Ticket(
        "margaret",
        2,
        "voice",
        "open",
        "high",
        "incident",
        "shipping late_delivery",
        "Espresso beans order {order} still not here",
        "Hi, my order {order} was due on Tuesday and the tracking hasn't moved in four "
        "days. I'm nearly out of beans - can you find out what's going on?",
    ),
    _Ticket(
        "margaret",
        41,
        "email",
        "closed",
        "normal",
        "question",
        "product_question spare_parts",
        "Replacement burrs for my grinder",
        "Do you sell replacement burrs for the conical grinder I bought from you a few years "
        "ago? Mine are getting dull and I'd rather not replace the whole machine.",
    ),
    _Ticket(
        "margaret",
        160,
        "chat",
        "closed",
        "normal",
        "incident",
        "damaged_item replacement",
        "Mug arrived chipped",
        "One of the stoneware mugs in order {order} arrived with a chip on the rim. Could you "
        "send a replacement? The other three are fine.",
    ),
    _Ticket(
        "margaret",
        320,
        "email",
        "closed",
        "low",
        "question",
        "gift_card",
        "Scheduling an e-gift card",
        "Can I buy an e-gift card now and have it delivered on my sister's birthday?",
    ),
    _Ticket(
        "daniel",
        3,
        "email",
        "pending",
        "normal",
        "incident",
        "damaged_item kitchen",
        "Dutch oven lid cracked in transit",
        "The lid of the enamelled Dutch oven from order {order} arrived with a hairline "
        "crack. Photos attached. Can you send a new lid or swap the whole pot?",
    ),
    _Ticket(
        "daniel",
        95,
        "email",
        "closed",
        "low",
        "question",
        "returns exchange",
        "Exchange a knife block",
        "I'd like to exchange the walnut knife block from order {order} for the magnetic "
        "one. The box hasn't been opened.",
    ),
    _Ticket(
        "daniel",
        240,
        "voice",
        "closed",
        "normal",
        "incident",
        "shipping wrong_address",
        "Package sent to my old address",
        "I updated my address in my account, but order {order} still went to my old "
        "apartment. Can you redirect it or send it again?",
    ),
    _Ticket(
        "priya",
        1,
        "chat",
        "new",
        "normal",
        "question",
        "subscription skip_delivery",
        "Skip next month's tea delivery",
        "I'm travelling for most of next month. Can I skip one delivery of my monthly tea "
        "box without cancelling the subscription?",
    ),
    _Ticket(
        "priya",
        58,
        "chat",
        "closed",
        "low",
        "question",
        "product_question coffee_beans",
        "Which single origin is least acidic?",
        "Acidic coffee doesn't agree with me. Which of your single origins would you "
        "recommend for a French press?",
    ),
    _Ticket(
        "priya",
        190,
        "email",
        "closed",
        "normal",
        "incident",
        "wrong_item",
        "Got green tea instead of oolong",
        "Order {order} came with a tin of sencha instead of the oolong I ordered. I'm happy "
        "to keep the sencha if you can send the oolong.",
    ),
    _Ticket(
        "priya",
        300,
        "voice",
        "closed",
        "low",
        "question",
        "billing payment_method",
        "Update the card on my account",
        "My card expired last month. How do I change the card saved for my tea subscription?",
    ),
    _Ticket(
        "tomasz",
        4,
        "email",
        "open",
        "normal",
        "incident",
        "warranty coffee_gear",
        "Kettle stopped heating after eight months",
        "My gooseneck kettle stopped heating this week. It's still under the two-year "
        "warranty - how do I get it repaired or replaced?",
    ),
    _Ticket(
        "tomasz",
        22,
        "chat",
        "solved",
        "low",
        "question",
        "invoice billing",
        "Invoice with my company name",
        "I buy office supplies for my consulting business. Can you reissue the invoice for "
        "order {order} with my company name on it?",
    ),
    _Ticket(
        "tomasz",
        130,
        "voice",
        "closed",
        "normal",
        "question",
        "order_change",
        "Add an item before it ships",
        "I just placed order {order} and forgot a box of paper filters. Can you add them "
        "before it ships so I don't pay shipping twice?",
    ),
    _Ticket(
        "aiko",
        2,
        "voice",
        "open",
        "high",
        "incident",
        "returns refund refund_status",
        "Refund for returned teapot not received",
        "I returned the cast-iron teapot two weeks ago and tracking shows you received it, "
        "but the refund still isn't on my card. Can you check?",
    ),
    _Ticket(
        "aiko",
        75,
        "email",
        "closed",
        "normal",
        "question",
        "loyalty",
        "Do my loyalty points expire?",
        "I've been saving points for a while. Do they expire, and can I use them on sale items?",
    ),
    _Ticket(
        "aiko",
        210,
        "chat",
        "closed",
        "normal",
        "incident",
        "damaged_item tableware",
        "Two plates broken in the dinnerware set",
        "Two of the dinner plates in order {order} were broken when I opened the box. Can "
        "you replace just those two?",
    ),
    _Ticket(
        "aiko",
        330,
        "email",
        "closed",
        "low",
        "question",
        "product_question back_in_stock",
        "Restock date for the celadon bowls",
        "The celadon rice bowls have been sold out for weeks. Do you know when they'll be back?",
    ),
    _Ticket(
        "grace",
        1,
        "email",
        "new",
        "normal",
        "question",
        "shipping expedited_shipping",
        "Can you expedite my planter order?",
        "I'm hosting a garden party on Saturday. Is there any way to upgrade shipping on "
        "order {order} so it arrives by Friday?",
    ),
    _Ticket(
        "grace",
        110,
        "chat",
        "closed",
        "normal",
        "incident",
        "damaged_item garden",
        "Terracotta pots arrived broken",
        "Three of the six terracotta pots in order {order} were smashed in the box. Can you "
        "replace them?",
    ),
    _Ticket(
        "grace",
        260,
        "email",
        "closed",
        "low",
        "question",
        "product_question garden",
        "Is the raised bed kit treated wood?",
        "I want to grow vegetables in the cedar raised bed. Is the wood treated with anything?",
    ),
    _Ticket(
        "beanthere",
        1,
        "voice",
        "open",
        "urgent",
        "incident",
        "shipping late_delivery business",
        "Today's bean delivery hasn't arrived - we open at 7",
        "This is Jess from Bean There Café. Our standing order {order} didn't come this "
        "morning and we'll run out of espresso beans by noon. Can you find it or send a "
        "courier?",
    ),
    _Ticket(
        "beanthere",
        12,
        "email",
        "solved",
        "normal",
        "task",
        "invoice billing business",
        "Monthly invoice copy for our accountant",
        "Could you email a combined invoice for last month's orders? Our accountant needs "
        "a single PDF with our tax ID on it.",
    ),
    _Ticket(
        "beanthere",
        45,
        "chat",
        "closed",
        "normal",
        "question",
        "bulk_order discount business",
        "Bulk price for 20 kg of house blend",
        "We go through about 20 kg of house blend a week. Is there a better price if we "
        "order in bulk once a week instead of every day?",
    ),
    _Ticket(
        "beanthere",
        120,
        "email",
        "closed",
        "high",
        "incident",
        "wrong_item business",
        "Received decaf instead of house blend",
        "Order {order} had two bags of decaf instead of the house blend. We need the right "
        "beans by tomorrow morning.",
    ),
    _Ticket(
        "beanthere",
        200,
        "voice",
        "closed",
        "normal",
        "task",
        "account_update business",
        "Add a second user to our business account",
        "Our new shift manager, Tom, should be able to place orders too. Can you add him "
        "as a user on our account?",
    ),
    _Ticket(
        "beanthere",
        300,
        "email",
        "closed",
        "normal",
        "question",
        "tax_exempt business",
        "Sales tax resale certificate",
        "We resell some of your packaged beans at the counter. Where do we send our resale "
        "certificate so those items aren't taxed?",
    ),
    _Ticket(
        "brightside",
        3,
        "email",
        "pending",
        "normal",
        "task",
        "invoice billing business",
        "Invoice copies for our bookkeeper",
        "Hi, our bookkeeper needs copies of all invoices from the last three months, "
        "ideally as one PDF. Can you send them to this address?",
    ),
    _Ticket(
        "brightside",
        60,
        "voice",
        "closed",
        "high",
        "incident",
        "shipping missing_package business",
        "Toner delivery missing",
        "Order {order} shows as delivered but nobody at the front desk received it. We "
        "need that toner for patient forms today.",
    ),
    _Ticket(
        "brightside",
        150,
        "email",
        "closed",
        "low",
        "task",
        "account_update business",
        "Update our billing address",
        "We've moved the practice to Suite 210 in the same building. Please update the "
        "billing and shipping address on our account.",
    ),
    _Ticket(
        "brightside",
        280,
        "chat",
        "closed",
        "normal",
        "question",
        "bulk_order discount business",
        "Volume discount on copy paper",
        "We order copy paper almost every day. Is there a case price or a standing-order discount?",
    ),
    _Ticket(
        "luis",
        2,
        "email",
        "open",
        "normal",
        "incident",
        "wrong_size exchange",
        "Sheets are the wrong size",
        "I ordered queen sheets in order {order} but the package has a twin set. Can I "
        "exchange them?",
    ),
    _Ticket(
        "luis",
        180,
        "chat",
        "closed",
        "low",
        "question",
        "product_question",
        "Is the linen duvet cover pre-washed?",
        "Before I order: is the linen duvet cover pre-washed, or will it shrink?",
    ),
    _Ticket(
        "hannah",
        3,
        "chat",
        "pending",
        "normal",
        "question",
        "returns refund refund_status",
        "When will my refund show up?",
        "You confirmed my return last week but I still don't see the refund. How long does "
        "it usually take to reach my card?",
    ),
    _Ticket(
        "hannah",
        90,
        "email",
        "closed",
        "normal",
        "incident",
        "damaged_item tableware",
        "Teacup handle snapped off",
        "The handle of one teacup from order {order} came off the first time I used it. "
        "Is that covered?",
    ),
    _Ticket(
        "omar",
        1,
        "voice",
        "open",
        "normal",
        "incident",
        "shipping late_delivery",
        "Order hasn't arrived",
        "Tracking for order {order} has said 'delayed in transit' since Monday. Is it lost?",
    ),
    _Ticket(
        "omar",
        250,
        "chat",
        "closed",
        "low",
        "question",
        "product_question coffee_beans",
        "Roast date on the beans?",
        "Do you print the roast date on your bags? I like to use beans within a month.",
    ),
    _Ticket(
        "chloe",
        4,
        "email",
        "open",
        "normal",
        "question",
        "product_question coffee_gear",
        "Does the pour-over set include filters?",
        "I'm looking at the ceramic pour-over set. Does it come with filters, and which "
        "size do I need to reorder?",
    ),
    _Ticket(
        "chloe",
        140,
        "chat",
        "closed",
        "normal",
        "question",
        "order_change cancel",
        "Cancel a duplicate order",
        "I accidentally placed the same order twice. Can you cancel order {order}?",
    ),
    _Ticket(
        "marcus",
        2,
        "voice",
        "pending",
        "high",
        "incident",
        "billing double_charge",
        "Charged twice for one order",
        "My card statement shows two charges for order {order}. Please refund the duplicate.",
    ),
    _Ticket(
        "marcus",
        200,
        "email",
        "closed",
        "low",
        "question",
        "invoice billing",
        "Receipt for my expense report",
        "Can you send an itemised receipt for order {order}? My employer reimburses "
        "office supplies.",
    ),
    _Ticket(
        "nadia",
        8,
        "chat",
        "solved",
        "low",
        "question",
        "order_change",
        "Remove one item from my order",
        "Can you take the salad bowl off order {order}? I found one locally.",
    ),
    _Ticket(
        "samuel",
        14,
        "email",
        "solved",
        "normal",
        "incident",
        "damaged_item kitchen",
        "Glass carafe shattered on arrival",
        "The glass carafe in order {order} was in pieces when I opened the box. Could you "
        "send another one?",
    ),
    _Ticket(
        "samuel",
        160,
        "voice",
        "closed",
        "low",
        "question",
        "subscription",
        "Change the grind on my coffee subscription",
        "I've switched to an espresso machine. Can my monthly beans come as espresso grind "
        "from now on?",
    ),
    _Ticket(
        "isabel",
        20,
        "voice",
        "solved",
        "low",
        "question",
        "account password_reset",
        "Can't log in to my account",
        "The password reset email never arrives. Can you help me get back into my account?",
    ),
    _Ticket(
        "kevin",
        6,
        "chat",
        "solved",
        "low",
        "question",
        "returns return_label",
        "How do I print a return label?",
        "I want to return the desk organiser from order {order}. Where do I find the return label?",
    ),
    _Ticket(
        "fatima",
        2,
        "email",
        "open",
        "normal",
        "incident",
        "wrong_item tableware",
        "Wrong colour napkins",
        "I ordered sage green linen napkins (order {order}) but received mustard yellow. "
        "Can you swap them?",
    ),
    _Ticket(
        "ethan",
        3,
        "voice",
        "pending",
        "normal",
        "incident",
        "shipping late_delivery",
        "Where is my package? Order {order}",
        "My order {order} was supposed to arrive yesterday and the tracking link shows "
        "nothing. Can you check with the carrier?",
    ),
    _Ticket(
        "ethan",
        420,
        "email",
        "closed",
        "low",
        "question",
        "product_question coffee_beans",
        "Whole bean or ground?",
        "I don't own a grinder yet. Which of your blends can I get pre-ground for a drip machine?",
    ),
    _Ticket(
        "meilin",
        11,
        "chat",
        "solved",
        "low",
        "question",
        "product_question tea",
        "Is the glass teapot dishwasher safe?",
        "The glass teapot I bought is lovely. Can it go in the dishwasher, or only by hand?",
    ),
    _Ticket(
        "rafael",
        9,
        "email",
        "solved",
        "low",
        "question",
        "marketing unsubscribe",
        "Too many marketing emails",
        "I'm getting three emails a week from you. Can you take me off the promotional list "
        "but keep order updates?",
    ),
    _Ticket(
        "jordan",
        2,
        "voice",
        "open",
        "normal",
        "incident",
        "damaged_item garden",
        "Hose nozzle leaks out of the box",
        "The brass hose nozzle from order {order} leaks at the connector even with a new "
        "washer. I'd like a replacement.",
    ),
    _Ticket(
        "aaliyah",
        17,
        "chat",
        "solved",
        "normal",
        "question",
        "shipping tracking",
        "Tracking link not working",
        "The tracking link in my shipping email for order {order} gives an error page. "
        "Where is my parcel?",
    ),
    _Ticket(
        "henrik",
        25,
        "email",
        "solved",
        "low",
        "question",
        "billing payment_method",
        "Do you accept PayPal?",
        "I'd rather not use my card online. Can I pay with PayPal at checkout?",
    ),
    _Ticket(
        "beatrice",
        2,
        "email",
        "open",
        "normal",
        "question",
        "gift_wrapping holiday",
        "Gift wrapping before Christmas",
        "Every year I order presents for the family from you. Can you gift-wrap items and "
        "add a handwritten note, and what's the last day to order for delivery before "
        "Christmas?",
    ),
    _Ticket(
        "beatrice",
        "gift_season",
        "email",
        "closed",
        "high",
        "incident",
        "shipping late_delivery holiday",
        "Will my gifts arrive before the 24th?",
        "Order {order} is all Christmas presents and tracking hasn't updated in three days. "
        "Will it arrive by the 24th?",
    ),
    _Ticket(
        "victor",
        3,
        "chat",
        "pending",
        "normal",
        "question",
        "gift multiple_addresses holiday",
        "Ship one order to several addresses?",
        "Every year I send coffee gift boxes to my family. Can I place one order and have "
        "it shipped to five different addresses?",
    ),
    _Ticket(
        "victor",
        "gift_season",
        "voice",
        "closed",
        "normal",
        "question",
        "gift gift_receipt holiday",
        "Gift receipt without prices",
        "Order {order} is going straight to my parents. Can the packing slip leave out the prices?",
    ),
    _Ticket(
        "tyler",
        1,
        "chat",
        "new",
        "normal",
        "incident",
        "promo_code discount",
        "Promo code not working at checkout",
        "The code FLASH25 from your newsletter says 'not valid' at checkout, but the email "
        "says it's good until Sunday. Can you apply it to my cart?",
    ),
    _Ticket(
        "tyler",
        70,
        "email",
        "closed",
        "low",
        "question",
        "price_match discount",
        "Do you price match?",
        "Another store has the same burr grinder for $20 less. Do you match competitors' prices?",
    ),
    _Ticket(
        "tyler",
        230,
        "chat",
        "closed",
        "low",
        "question",
        "promo_code discount",
        "Forgot to enter my discount code",
        "I forgot to enter my discount code on order {order}. Can you still apply it?",
    ),
    _Ticket(
        "carmen",
        3,
        "email",
        "open",
        "normal",
        "question",
        "price_adjustment discount",
        "Price dropped the day after I ordered",
        "I bought the French press in order {order} and two days later it went on sale for "
        "20% less. Can you refund the difference?",
    ),
    _Ticket(
        "carmen",
        130,
        "chat",
        "closed",
        "low",
        "question",
        "promo_code discount",
        "Can I stack two discount codes?",
        "I have a free-shipping code and a 15% code. Can I use both on one order?",
    ),
    _Ticket(
        "noah",
        1,
        "chat",
        "new",
        "normal",
        "question",
        "product_question setup coffee_gear",
        "How do I set up my new grinder?",
        "My first order arrived - thanks! The burr grinder's manual is pretty thin. What "
        "grind setting should I start with for pour-over?",
    ),
    _Ticket(
        "amara",
        2,
        "email",
        "open",
        "normal",
        "question",
        "shipping order_status",
        "When will my first order ship?",
        "My first order ({order}) still says 'processing'. When will it ship?",
    ),
    _Ticket(
        "walter",
        3,
        "email",
        "open",
        "normal",
        "question",
        "account reactivation",
        "Reactivate my account",
        "I used to order from you all the time, but now my login says the account is "
        "inactive. Can you reactivate it? I'd like to reorder my usual beans.",
    ),
    _Ticket(
        "walter",
        "last_order",
        "email",
        "closed",
        "high",
        "incident",
        "shipping late_delivery complaint",
        "Third late delivery this year",
        "Order {order} is late again, the third time this year. I've been a customer for "
        "years but I'm seriously thinking about going elsewhere.",
    ),
    _Ticket(
        "ingrid",
        5,
        "voice",
        "open",
        "normal",
        "question",
        "account reactivation loyalty",
        "Is my old loyalty discount still valid?",
        "I haven't ordered in a couple of years but I'd like to start again. Do I still "
        "have my loyalty discount and my saved addresses?",
    ),
    _Ticket(
        "ravi",
        1,
        "email",
        "new",
        "normal",
        "question",
        "presales bulk_order business",
        "Office supplies for a 15-person team - net 30?",
        "We're opening a new office next month and need paper, toner and break-room coffee "
        "for 15 people. Do you offer business accounts with net-30 invoicing?",
    ),
    _Ticket(
        "elena",
        2,
        "chat",
        "open",
        "low",
        "question",
        "presales shipping_international",
        "Do you ship to Canada?",
        "I'd like to order an espresso machine. Do you ship to Toronto, and are duties "
        "included in the price?",
    ),
)

_MONTH_CODES = {
    1: "NEWYEAR10",
    2: "WINTER10",
    3: "SPRING15",
    4: "SPRING15",
    5: "SPRING15",
    6: "SUMMER10",
    7: "SUMMER10",
    8: "BACK2SCHOOL",
    9: "FALL20",
    10: "FALL20",
    11: "BLACKFRIDAY25",
    12: "HOLIDAY15",
}
_ANYTIME_CODES = ("FREESHIP50", "FLASH25", "LOYAL10")
_CLOSED_DAYS = {(1, 1), (7, 4), (12, 25)}

_RawOrder = tuple[datetime, int, str | None, str]
_OrderMaker = Callable[[random.Random, date, _Person, int], list[_RawOrder]]


def _spread(rng: random.Random, oldest: int, newest: int, n: int) -> list[int]:
    """`n` days-ago values at roughly even intervals, the last one exactly `newest`."""
    if n <= 0:
        return []
    step = (oldest - newest) / max(n - 1, 1)
    days = [
        min(oldest, max(newest + 1, round(newest + step * (k + rng.uniform(-0.4, 0.4)))))
        for k in range(n - 1, 0, -1)
    ]
    return [*days, newest]


def _scatter(rng: random.Random, oldest: int, newest: int, n: int) -> list[int]:
    return sorted((rng.randint(newest, oldest) for _ in range(n)), reverse=True) if n else []


def _split(rng: random.Random, n: int, total_cents: int) -> list[int]:
    """`n` amounts that vary around the mean and add up to exactly `total_cents`."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(n)]
    scale = total_cents / sum(weights)
    amounts = [max(100, round(w * scale)) for w in weights]
    amounts[-1] += total_cents - sum(amounts)
    return amounts


def _mostly(rng: random.Random, n: int, share: float) -> list[bool]:
    chosen = set(rng.sample(range(n), math.ceil(share * n)))
    return [i in chosen for i in range(n)]


def _orders(
    rng: random.Random,
    today: date,
    person: _Person,
    days_ago: Sequence[int],
    amounts: Sequence[int],
    discounted: Sequence[bool] | None = None,
) -> list[_RawOrder]:
    flags = discounted if discounted is not None else [rng.random() < 0.1 for _ in days_ago]
    orders: list[_RawOrder] = []
    for ago, cents, flag in zip(days_ago, amounts, flags, strict=True):
        day = today - timedelta(days=ago)
        placed = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)))
        code = rng.choice(_ANYTIME_CODES) if rng.random() < 0.3 else _MONTH_CODES[day.month]
        favourite = rng.random() < 0.85
        others = [c for c in CATEGORIES if c not in person.favourites]
        category = (
            rng.choices(person.favourites, weights=(3, 2, 1)[: len(person.favourites)])[0]
            if favourite
            else rng.choice(others)
        )
        orders.append((placed, cents, code if flag else None, category))
    return orders


def _high(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    n = rng.randint(16, 34)
    recent = _spread(rng, 360, rng.randint(5, 12), n)
    older = _spread(rng, since, 372, round((since - 372) / 365 * rng.uniform(8, 14)))
    amounts = [rng.randint(40_00, 220_00) for _ in older] + _split(
        rng, n, rng.randint(2_600_00, 6_500_00)
    )
    return _orders(rng, today, person, older + recent, amounts)


def _medium(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    n = rng.randint(5, 8)
    recent = _spread(rng, 355, rng.randint(5, 12), n)
    older = _scatter(rng, since, 380, round((since - 380) / 365 * rng.uniform(2, 5)))
    amounts = [rng.randint(40_00, 160_00) for _ in older] + _split(
        rng, n, rng.randint(450_00, 1_050_00)
    )
    return _orders(rng, today, person, older + recent, amounts)


def _low(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    recent = [rng.randint(5, 12)]
    if rng.random() < 0.5:
        recent.insert(0, rng.randint(60, 330))
    older = _scatter(rng, since, 400, rng.randint(0, 2)) if since > 420 else []
    amounts = [rng.randint(20_00, 80_00) for _ in older] + _split(
        rng, len(recent), rng.randint(30_00, 170_00)
    )
    return _orders(rng, today, person, older + recent, amounts)


def _seasonal(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    """The same five gift-season days every year, so any 12-month window holds 3-5 of them."""
    start = today - timedelta(days=since)
    offsets = sorted(rng.sample(range(50), 5))
    days = [
        (today - day).days
        for year in range(start.year, today.year + 1)
        for day in (date(year, 11, 3) + timedelta(days=offset) for offset in offsets)
        if start <= day < today
    ]
    days.append((today - date(start.year + 1, 6, rng.randint(1, 28))).days)
    days.sort(reverse=True)
    return _orders(rng, today, person, days, [rng.randint(60_00, 180_00) for _ in days])


def _small_business(
    rng: random.Random, today: date, person: _Person, since: int
) -> list[_RawOrder]:
    days = []
    for ago in range(since, 0, -1):
        day = today - timedelta(days=ago)
        skipped = rng.random() < 0.04
        if day.weekday() < 5 and (day.month, day.day) not in _CLOSED_DAYS and not skipped:
            days.append(ago)
    amounts = [rng.randint(25_00, 90_00) for _ in days]
    return _orders(rng, today, person, days, amounts, [False] * len(days))


def _deal_seeker(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    n = rng.randint(7, 11)
    recent = _spread(rng, 355, rng.randint(5, 12), n)
    older = _scatter(rng, since, 380, round((since - 380) / 365 * rng.uniform(4, 7)))
    amounts = [rng.randint(30_00, 120_00) for _ in older] + _split(
        rng, n, rng.randint(380_00, 900_00)
    )
    discounted = _mostly(rng, len(older), 0.8) + _mostly(rng, n, 0.8)
    return _orders(rng, today, person, older + recent, amounts, discounted)


def _new(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    ((placed, cents, _, _),) = _orders(
        rng, today, person, [since - rng.randint(0, 2)], [rng.randint(35_00, 180_00)], [False]
    )
    return [(placed, cents, "WELCOME10", person.favourites[0])]


def _lapsed(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    last = rng.randint(470, 800)
    n = max(18, round((since - last) / 365 * rng.uniform(5, 8)))
    days = _spread(rng, since, last, n)
    return _orders(rng, today, person, days, [rng.randint(40_00, 150_00) for _ in days])


def _prospect(rng: random.Random, today: date, person: _Person, since: int) -> list[_RawOrder]:
    return []


_ORDER_MAKERS: dict[str, _OrderMaker] = {
    "high": _high,
    "medium": _medium,
    "low": _low,
    "seasonal": _seasonal,
    "small_business": _small_business,
    "deal_seeker": _deal_seeker,
    "new": _new,
    "lapsed": _lapsed,
    "prospect": _prospect,
}


def _since_days(rng: random.Random, person: _Person) -> int:
    if person.story == "new":
        return rng.randint(5, 12)
    if person.story == "prospect":
        return rng.randint(2, 5)
    return round(person.years * 365.25) + rng.randint(0, 20)


def _ticket_day(when: int | str, today: date, customer: SampleCustomer) -> date:
    """Resolve a ticket's age: days ago, the last gift season, or just after the last order."""
    if when == "gift_season":
        year = (
            today.year
            if date(today.year, 12, 12) <= today - timedelta(days=35)
            else (today.year - 1)
        )
        return date(year, 12, 12)
    if when == "last_order":
        return customer.orders[-1].placed_at.date() + timedelta(days=3)
    if isinstance(when, int):
        return today - timedelta(days=when)
    raise ValueError(f"unknown ticket age {when!r}")


def _order_ref(customer: SampleCustomer, before: datetime) -> str:
    placed = [o.external_id for o in customer.orders if o.placed_at < before]
    return placed[-1] if placed else "(I don't have the number handy)"


def _tickets(today: date, customers: dict[str, SampleCustomer]) -> tuple[SampleTicket, ...]:
    rng = random.Random(f"{_SEED}:tickets")
    latest = datetime.combine(today, time()) - timedelta(minutes=5)
    agents = [a.helpdesk_user_id for a in _AGENTS if a.role == "agent"]
    supervisor = next(a.helpdesk_user_id for a in _AGENTS if a.role == "admin")
    drafts = []
    for spec in _TICKETS:
        customer = customers[spec.key]
        first_hour, last_hour = (9, 17) if spec.channel == "voice" else (7, 21)
        created = datetime.combine(
            _ticket_day(spec.when, today, customer),
            time(rng.randint(first_hour, last_hour), rng.randint(0, 59)),
        )
        worked_on = {
            "new": timedelta(0),
            "open": timedelta(minutes=rng.randint(10, 360)),
            "pending": timedelta(minutes=rng.randint(60, 1200)),
            "solved": timedelta(minutes=rng.randint(120, 2880)),
            "closed": timedelta(days=4, minutes=rng.randint(120, 2880)),
        }[spec.status]
        helper = rng.choice(agents)
        drafts.append(
            (
                created,
                spec,
                customer,
                max(created, min(created + worked_on, latest)),
                None
                if spec.status == "new"
                else (supervisor if spec.priority == "urgent" else helper),
            )
        )
    drafts.sort(key=lambda d: d[0])
    tickets = [
        SampleTicket(
            external_id=str(1001 + number),
            requester_user_id=customer.helpdesk_user_id,
            subject=spec.subject.replace("{order}", _order_ref(customer, created)),
            description=spec.description.replace("{order}", _order_ref(customer, created)),
            channel=spec.channel,
            status=spec.status,
            priority=spec.priority,
            ticket_type=spec.ticket_type,
            tags=tuple(spec.tags.split()),
            assignee_user_id=assignee,
            created_at=created,
            updated_at=updated,
        )
        for number, (created, spec, customer, updated, assignee) in enumerate(drafts)
    ]
    return tuple(reversed(tickets))


def _sample_order(
    external_id: str, placed: datetime, cents: int, code: str | None, category: str, today: date
) -> SampleOrder:
    age = (today - placed.date()).days
    return SampleOrder(
        external_id,
        placed,
        cents,
        code,
        category,
        fulfillment_status="fulfilled" if age > 3 else "unfulfilled",
        tracking_url=f"https://tracking.example.com/{external_id}" if 3 < age <= 60 else None,
        item_count=1 + cents // 4000 % 4,
    )


def build_sample_data(today: date) -> SampleData:
    """Build the demo data set relative to `today`, the same every time for the same day."""
    histories = []
    for person in _PEOPLE:
        rng = random.Random(f"{_SEED}:{person.key}")
        since = _since_days(rng, person)
        orders = sorted(_ORDER_MAKERS[person.story](rng, today, person, since))
        histories.append((person, today - timedelta(days=since), orders))

    chronological = sorted(
        (order[0], i, j)
        for i, (_, _, orders) in enumerate(histories)
        for j, order in enumerate(orders)
    )
    order_ids = {(i, j): f"ORD-{10001 + n}" for n, (_, i, j) in enumerate(chronological)}

    customers: dict[str, SampleCustomer] = {}
    for i, (person, since_date, orders) in enumerate(histories):
        customers[person.key] = SampleCustomer(
            helpdesk_user_id=str(90001 + i),
            name=person.name,
            email=person.email,
            phone=None if person.phone is None else f"+155555501{person.phone:02d}",
            customer_since=since_date,
            story=person.story,
            phone_only_store_name=_PHONE_ONLY_STORE_NAMES.get(person.key),
            orders=tuple(
                _sample_order(order_ids[i, j], placed, cents, code, category, today)
                for j, (placed, cents, code, category) in enumerate(orders)
            ),
        )
    return SampleData(
        customers=tuple(customers.values()),
        agents=_AGENTS,
        tickets=_tickets(today, customers),
    )
