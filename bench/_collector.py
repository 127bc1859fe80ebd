"""Python's collector in a measure as the kiosk process sets it. Not a measure."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def as_in_the_kiosk_process() -> Iterator[None]:
    """The collector as the kiosk process sets it while its app runs, where its sync runs:
    what exists then is frozen out of the collector's walks
    (kiosk/runtime/kiosk_process.py), and no full collection comes on its own
    (screens/base_app.py runs it in a pause, when no one waits).

    The kiosk side of a measure runs in this process, which holds what the measures before
    it left: 450,000 objects after the journeys and the documents. A full collection that
    came during a round of pushes walked them all: 266 ms."""
    from screens.base_app import NO_AUTOMATIC_FULL_COLLECTION

    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], NO_AUTOMATIC_FULL_COLLECTION)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
