"""Delivery: every action reaches its ticket as one note, exactly once, through the outbox."""
