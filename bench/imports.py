"""What the kiosk imports on its way to the welcome screen (python -X importtime)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections import defaultdict

from bench import ROOT, Figure
from bench._apps import TIMEOUT, child_args, child_env, warm_up

ORDER = 20
RUNS = 3
TOP = 5
# Modules that only later screens need (documents, QR codes, the password lists):
# none of them should be imported before the welcome screen is up.
MUST_NOT_LOAD = (
    "fpdf",
    "PIL",
    "fontTools",
    "pypdf",
    "segno",
    "zxcvbn.frequency_lists",
    "aiosmtpd",
    # The store opens after the first screen is drawn.
    "peewee",
    "sqlite3",
    "argon2",
    "email_validator",
    "smtplib",
)


def _importtime(mode: str) -> list[tuple[int, str, int, int]]:
    """(depth, module, self_us, cumulative_us) for each import of one start."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *child_args(mode)],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} start under -X importtime failed:\n{proc.stderr[-2000:]}")
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((depth, name.strip(), int(self_us), int(cumulative_us)))
    return rows


def _medians(
    runs: list[list[tuple[int, str, int, int]]],
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Per module: median self ms, median cumulative ms, and its depth (from the first run)."""
    self_ms, cumul_ms, depth = defaultdict(list), defaultdict(list), {}
    for rows in runs:
        for d, name, s, c in rows:
            self_ms[name].append(s / 1000)
            cumul_ms[name].append(c / 1000)
            depth.setdefault(name, d)
    med = lambda m: {k: statistics.median(v) for k, v in m.items()}  # noqa: E731
    return med(self_ms), med(cumul_ms), depth


def measure() -> list[Figure]:
    warm_up()  # the store exists and bytecode is cached, as for the timed starts
    kiosk_self, kiosk_cumul, kiosk_depth = _medians([_importtime("kiosk") for _ in range(RUNS)])
    bare_modules = {name for _, name, _, _ in _importtime("bare")}
    how = f"-X importtime, median of {RUNS} starts (importtime itself slows imports)"

    figures = []
    top_level = sorted((n for n, d in kiosk_depth.items() if d == 0), key=lambda n: -kiosk_cumul[n])
    for rank, name in enumerate(top_level[:TOP], 1):
        note = ""
        if rank == 1:
            note = f"cumulative ms of the imports made at top level, not nested in another; {how}"
        if name == "textual.app":
            note += (
                "; " if note else ""
            ) + "imported by the harness first (else under screens.app), same total"
        figures.append(Figure(f"import.top{rank}.{name}", kiosk_cumul[name], "ms", note=note))

    # What the kiosk imports on top of a bare Textual app, by top-level package.
    extra: dict[str, float] = defaultdict(float)
    extra_count: dict[str, int] = defaultdict(int)
    for name, ms in kiosk_self.items():
        if name not in bare_modules:
            extra[name.partition(".")[0]] += ms
            extra_count[name.partition(".")[0]] += 1
    total = sum(extra.values())
    figures.append(
        Figure(
            "import.extra_over_bare",
            total,
            "ms",
            note=f"self time of the {sum(extra_count.values())} modules the kiosk imports "
            f"and the bare app does not",
        )
    )
    for package in sorted(extra, key=lambda p: -extra[p])[:TOP]:
        figures.append(
            Figure(
                f"import.extra.{package}",
                extra[package],
                "ms",
                note=f"{extra_count[package]} modules, self time summed"
                + (" (standard library)" if package in sys.stdlib_module_names else ""),
            )
        )

    loaded = [m for m in MUST_NOT_LOAD if any(n == m or n.startswith(m + ".") for n in kiosk_depth)]
    figures.append(
        Figure(
            "import.must_not_load",
            len(loaded),
            "modules",
            goal=0,
            note=("loaded at start: " + ", ".join(loaded))
            if loaded
            else "none of " + ", ".join(MUST_NOT_LOAD),
        )
    )
    return figures
