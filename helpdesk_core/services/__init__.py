"""Service functions: what the CLI (and later the web admin and task workers) call.

Every function takes the application object, a session owned by the caller, and the acting user
(``actor``; :data:`~helpdesk_core.services.permissions.SYSTEM` for the local operator). They flush
but never commit, except where the docstring says so (mailbox validation needs none).
"""
