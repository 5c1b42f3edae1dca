"""Real servers on loopback for tests (Dovecot, PostgreSQL, SMTP sink, OAuth stand-in, misbehaving
ports). Imported only by tests and benchmarks, never by the runtime code."""
