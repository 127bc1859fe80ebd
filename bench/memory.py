"""Peak memory (max RSS) of the kiosk once the welcome screen has rendered."""

from __future__ import annotations

from bench import Figure
from bench._apps import RUNS, median, starts

ORDER = 30


def measure() -> list[Figure]:
    samples = starts()  # the same cold starts as the start-up measure
    kiosk = [s.maxrss_kib / 1024 for s in samples["kiosk"]]
    bare = [s.maxrss_kib / 1024 for s in samples["bare"]]
    return [
        Figure(
            "memory.kiosk.welcome_maxrss",
            median(kiosk),
            "MiB",
            note=f"getrusage(RUSAGE_SELF).ru_maxrss in the child at the rendered welcome screen, "
            f"median of {RUNS} (max {max(kiosk):.1f})",
        ),
        Figure(
            "memory.bare.maxrss", median(bare), "MiB", note="the bare Textual app, for comparison"
        ),
    ]
