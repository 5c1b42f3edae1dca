"""helpdesk-core: department mailboxes become tickets.

Public API for plugin authors:

* :data:`hookimpl` — decorate your hook implementations with it.
* :mod:`helpdesk_core.hookspecs` — the contract (documented in ``docs/hooks.md``).
* :mod:`helpdesk_core.providers.base` — base classes for mailbox providers.
* :mod:`helpdesk_core.errors` — the error classes (root: :class:`HelpdeskError`).
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "helpdesk"

#: marker for hook implementations: ``@hookimpl def helpdesk_register_providers(register): ...``
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__version__ = "0.1.0"

__all__ = ["hookimpl", "PROJECT_NAME", "__version__"]
