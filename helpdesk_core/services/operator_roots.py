"""Folders on the server that settings may name, by who sets them.

A department admin manages its department through the CLI or the web app, but does not own the
machine: a Maildir path lets the importer read and then delete files, a templates folder is read
and rendered. So for every actor but :data:`~helpdesk_core.services.permissions.SYSTEM` (the local
operator, who may name anything) such a path must lie under a root the operator configured in the
environment:

* ``HELPDESK_MAILDIR_ROOT`` — the folder fields of mailbox providers (``type="path"``: the Maildir
  path, a CA file);
* ``HELPDESK_TEMPLATE_ROOT`` — a department's ``templates_dir``.

Unset means none: only the operator may set such a path. Several roots are separated by ``:``
(``os.pathsep``). Paths are compared after resolving symlinks and ``..``.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpdesk_core.errors import PermissionDenied
from helpdesk_core.services.permissions import Actor, SystemActor

MAILDIR_ROOT = "HELPDESK_MAILDIR_ROOT"
TEMPLATE_ROOT = "HELPDESK_TEMPLATE_ROOT"


def operator_roots(variable: str) -> list[Path]:
    """The roots named by environment ``variable`` (resolved), or [] when unset."""
    return [Path(os.path.realpath(os.path.expanduser(r))) for r in os.environ.get(variable, "").split(os.pathsep)
            if r.strip()]


def require_under_root(actor: Actor, path: str, variable: str, what: str) -> None:
    """Raise PermissionDenied unless ``actor`` is the operator or ``path`` is under a root of
    ``variable``."""
    if isinstance(actor, SystemActor):
        return
    real = Path(os.path.realpath(os.path.expanduser(path)))
    roots = operator_roots(variable)
    if any(real == root or root in real.parents for root in roots):
        return
    where = (f"under {', '.join(str(r) for r in roots)}" if roots
             else f"nowhere: the operator has not set {variable}")
    raise PermissionDenied(f"{what} {path!r} is outside the folders the operator allows ({where}). Ask the "
                           f"operator to set it ('helpdesk' without --as), or to allow a folder with {variable}.")
