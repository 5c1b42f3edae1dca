"""SMTP reply delivery comes with the outbox issue."""
