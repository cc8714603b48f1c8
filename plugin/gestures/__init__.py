"""Gestures given in the shop: a catalog entry bound to a discount code, a gift card, a refund,
a free replacement or free shipping, executed through the outbox exactly once (issue 18)."""
