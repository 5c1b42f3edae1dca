"""Inbound mail: import cycles, mailbox leases, the importer, thread matching, the worker."""
