"""The rectorat's side of the sync: its store, the sync service and its HTTP API.

``kiosk rectorat serve`` runs it (see docs/sync-protocol.md for the contract). The
modules split as: :mod:`~kiosk.rectorat.store` (tables, schema, the change-feed
sequencer); :mod:`~kiosk.rectorat.service` (the one object the others call), which
composes :mod:`~kiosk.rectorat.kiosks` (credentials), :mod:`~kiosk.rectorat.items`
(reading a pushed item), :mod:`~kiosk.rectorat.rules` (the push rules, item by item),
:mod:`~kiosk.rectorat.bulk` (the set-based path of a batch), :mod:`~kiosk.rectorat.feed`
(pull and login elsewhere) and :mod:`~kiosk.rectorat.exam_office` (the exam office's
setters), with :mod:`~kiosk.rectorat.identity` and :mod:`~kiosk.rectorat.numbers`; then
:mod:`~kiosk.rectorat.api` (the Starlette app) and :mod:`~kiosk.rectorat.cli`.
Starlette, uvicorn and psycopg2 are imported only here, and only by the modules that
need them.
"""
