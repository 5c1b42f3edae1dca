"""Test support for helpdesk-core: what plugin authors import, and real servers on loopback.

Nothing here is imported by the runtime package (a test in ``tests/test_layering.py`` checks it).
Modules (importable outside pytest, e.g. by ``bench/``; only ``pytest_plugin`` imports pytest):

* :mod:`helpdesk_core.testing.apps` -- test installations (``make_app``, ``memory_app``, ``Cli``).
* :mod:`helpdesk_core.testing.fake` -- an in-memory fake mailbox provider.

* :mod:`helpdesk_core.testing.servers.dovecot` -- a private Dovecot (IMAP, IMAPS, POP3, POP3S) instance.
* :mod:`helpdesk_core.testing.servers.postgres` -- a throwaway PostgreSQL cluster.
* :mod:`helpdesk_core.testing.servers.smtp` -- an in-process aiosmtpd capture sink (STARTTLS, AUTH, XOAUTH2).
* :mod:`helpdesk_core.testing.servers.blackhole` -- ports that never greet / never accept (timeout tests).
* :mod:`helpdesk_core.testing.pytest_plugin` -- pytest fixtures built on the above (the ``pytest11``
  entry point ``helpdesk_core``; no autouse fixtures).
* :mod:`helpdesk_core.testing.strategies` -- Hypothesis strategies (subjects, client prefix chains,
  encoded subject headers, addresses, raw messages) for fuzzing parsing and thread matching.

The servers are private instances on 127.0.0.1 started from the installed Debian packages (dovecot,
postgresql, openssl); the system services are never used.
"""
