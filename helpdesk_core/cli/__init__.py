"""The ``helpdesk`` command line (click). Commands and JSON shapes are a contract: keep them stable."""

from helpdesk_core.cli.main import main

__all__ = ["main"]
