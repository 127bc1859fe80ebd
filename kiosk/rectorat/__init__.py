"""The rectorat's side of the sync: its store, the sync service and its HTTP API.

``kiosk rectorat serve`` runs it (see docs/sync-protocol.md for the contract). The
modules split as: :mod:`~kiosk.rectorat.store` (tables, schema, the change-feed
sequencer), :mod:`~kiosk.rectorat.service` (push, pull, login elsewhere, credentials and
the exam office's setters, plain Python), :mod:`~kiosk.rectorat.api` (the Starlette app)
and :mod:`~kiosk.rectorat.cli`. Starlette, uvicorn and psycopg2 are imported only here,
and only by the modules that need them.
"""
