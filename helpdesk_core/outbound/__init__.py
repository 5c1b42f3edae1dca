"""Outbound mail: the outbox (queue, claim, deliver)."""
