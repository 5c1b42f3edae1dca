"""Test support for helpdesk-core: real servers on loopback and shared test helpers.

Modules (importable outside pytest, e.g. by ``bench/``; only ``pytest_plugin`` imports pytest):

* :mod:`helpdesk_core.testing.servers.dovecot` -- a private Dovecot (IMAP, IMAPS, POP3, POP3S) instance.
* :mod:`helpdesk_core.testing.servers.postgres` -- a throwaway PostgreSQL cluster.
* :mod:`helpdesk_core.testing.servers.smtp` -- an in-process aiosmtpd capture sink (STARTTLS, AUTH, XOAUTH2).
* :mod:`helpdesk_core.testing.servers.blackhole` -- ports that never greet / never accept (timeout tests).
* :mod:`helpdesk_core.testing.pytest_plugin` -- pytest fixtures built on the above.
* :mod:`helpdesk_core.testing.strategies` -- Hypothesis strategies (subjects, client prefix chains,
  encoded subject headers, addresses, raw messages) for fuzzing parsing and thread matching.

Facts, configuration and gotchas: ``/work/shared/reference/mail-servers.md``.
"""
