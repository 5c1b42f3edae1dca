"""Service functions: THE API that the CLI (and later the web admin and task workers) call.

Every function takes a session owned by the caller (or the application, when it runs whole
transactions of its own, e.g. an import cycle or an outbox flush) and the acting user (``actor``;
:data:`~helpdesk_core.services.permissions.SYSTEM` for the local operator). Permissions are checked
here and nowhere else. They flush but never commit, except where the docstring says so.

Errors are :class:`~helpdesk_core.errors.HelpdeskError` subclasses with a machine-readable ``kind``
and ``details`` (``field``: the argument that is wrong; ``hint``: the next step, e.g.
``add_department``, with the values it needs); their messages name no command or option: each
interface words the hint for itself (``helpdesk_core.cli.common.describe`` for the command line).

The serializers (``*_summary``, ``*_json``) and the lookup :func:`.departments.get_department` take
no actor: service functions call them after checking the permission.
"""
