"""Confirmation PDF (kiosk.delivery.pdf): render time warm and cold, and file size."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from bench import ROOT, Figure

ORDER = 60
RENDERS = 20
COLD_RUNS = 3
RENDER_GOAL_MS = 150
SIZE_GOAL_KB = 60
CJK_NAME = "王小明"
ARABIC_NAME = "بن علي"  # DejaVu draws it, shaped by uharfbuzz (joined, right to left)

# A fresh interpreter: the first render pays for importing fpdf2 and parsing the fonts.
_COLD_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from bench.pdf import sample
from kiosk.delivery.pdf import render_confirmation
registration, session, now = sample()
t1 = time.perf_counter()
data = render_confirmation(registration, "jean.dupont@exemple.fr", session, now)
t2 = time.perf_counter()
print(json.dumps({"setup_ms": (t1 - t0) * 1000, "render_ms": (t2 - t1) * 1000, "bytes": len(data)}))
"""


def sample(family_name: str = "Dupont"):
    """A typical candidate's registration (individual, French, adult), its session, and « now »."""
    import uuid

    from kiosk.clock import Clock, parse_instant
    from kiosk.exam_sessions import load_session
    from kiosk.registration_form import blank_values, check
    from kiosk.store.models import Registration

    now = parse_instant("2019-11-12T14:40:00")
    session = load_session("bacpro-poitiers-2020", Clock(now, frozen=True))
    values = blank_values(session, family_name, "Jean")
    values.update(
        accept_rules=True,
        not_school_enrolled=True,
        sex="M",
        birth_date="05/03/2002",
        birth_town="Poitiers",
        birth_country="France",
        nationality="francaise",
        address_line1="12 rue de la Paix",
        postal_code="86000",
        town="Poitiers",
        country="France",
        phone="06 12 34 56 78",
        status="individuel",
        specialty=session.specialties[0].code,
        language="anglais",
        jdc_situation="jdc_effectuee",
        optional_language=True,
        optional_language_name="espagnol",
    )
    checked = check(values, session)
    if not checked.ok:
        raise RuntimeError(f"the bench's candidate is not valid: {checked.problems}")
    registration = Registration(
        id=uuid.UUID("3f1c2b7e-9a45-4d0e-8c61-5b2f0e7d9a13"),
        version=2,
        answers=checked.answers,
        status="registered",
        saved_at=parse_instant("2019-11-12T14:35:00"),
        number=None,
    )
    return registration, session, now


def _warm(registration, session, now) -> tuple[list[float], bytes]:
    from kiosk.delivery.pdf import render_confirmation

    times = []
    for _ in range(RENDERS):
        t0 = time.perf_counter()
        data = render_confirmation(registration, "jean.dupont@exemple.fr", session, now)
        times.append((time.perf_counter() - t0) * 1000)
    return times, data


def _cold() -> list[dict]:
    runs = []
    for _ in range(COLD_RUNS):
        proc = subprocess.run(
            [sys.executable, "-c", _COLD_CHILD],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"cold render failed:\n{proc.stderr[-2000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return runs


def _cold_warm_up() -> float:
    code = (
        "import time; t = time.perf_counter(); from kiosk.delivery.pdf import warm_up;"
        " warm_up(); print((time.perf_counter() - t) * 1000)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return float(proc.stdout.strip().splitlines()[-1])


def _pages(data: bytes) -> int:
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def measure() -> list[Figure]:
    from kiosk.delivery.pdf import render_confirmation

    cold = _cold()
    typical = sample()
    render_confirmation(typical[0], "jean.dupont@exemple.fr", typical[1], typical[2])  # warm-up
    typical_ms, typical_pdf = _warm(*typical)

    cjk = sample(CJK_NAME)
    t0 = time.perf_counter()
    render_confirmation(
        cjk[0], "jean.dupont@exemple.fr", cjk[1], cjk[2]
    )  # parses the fallback font
    cjk_first_ms = (time.perf_counter() - t0) * 1000
    cjk_ms, cjk_pdf = _warm(*cjk)
    arabic = sample(ARABIC_NAME)
    render_confirmation(arabic[0], "jean.dupont@exemple.fr", arabic[1], arabic[2])  # warm-up
    arabic_ms, arabic_pdf = _warm(*arabic)
    # What the kiosk does 5 s after its start (kiosk.runtime.kiosk_process): fpdf2, the fonts.
    warm_up_ms = _cold_warm_up()

    med = statistics.median
    spread = lambda xs: f"min {min(xs):.0f}, max {max(xs):.0f} ms"  # noqa: E731
    return [
        Figure(
            "pdf.render.typical",
            med(typical_ms),
            "ms",
            goal=RENDER_GOAL_MS,
            note=f"warm, median of {RENDERS} after one warm-up ({spread(typical_ms)}); "
            f"{_pages(typical_pdf)} pages",
        ),
        Figure(
            "pdf.render.typical.cold",
            med(r["render_ms"] for r in cold),
            "ms",
            note=f"first render in a fresh interpreter: imports fpdf2, parses DejaVu; median of "
            f"{COLD_RUNS} ({spread([r['render_ms'] for r in cold])})",
        ),
        Figure(
            "pdf.size.typical",
            len(typical_pdf) / 1024,
            "KB",
            goal=SIZE_GOAL_KB,
            note="DejaVu Sans regular and bold, subsets, compressed streams",
        ),
        Figure(
            "pdf.render.cjk",
            med(cjk_ms),
            "ms",
            goal=RENDER_GOAL_MS,
            note=f"family name {CJK_NAME}: adds Droid Sans Fallback; warm, median of {RENDERS} "
            f"({spread(cjk_ms)})",
        ),
        Figure(
            "pdf.render.cjk.first",
            cjk_first_ms,
            "ms",
            note="first CJK render of a process without the warm-up (fpdf2 already loaded):"
            " reads the 4 MB fallback font once for the process",
        ),
        Figure(
            "pdf.render.arabic",
            med(arabic_ms),
            "ms",
            goal=RENDER_GOAL_MS,
            note=f"family name {ARABIC_NAME}: shaped with uharfbuzz; warm, median of {RENDERS}"
            f" ({spread(arabic_ms)}); {len(arabic_pdf) / 1024:.0f} KB",
        ),
        Figure(
            "pdf.warm_up",
            warm_up_ms,
            "ms",
            note="kiosk.delivery.pdf.warm_up() in a fresh interpreter, as the kiosk runs it in a"
            " thread 5 s after its start: imports fpdf2, reads the three fonts",
        ),
        Figure("pdf.size.cjk", len(cjk_pdf) / 1024, "KB", note="with the fallback font's subset"),
    ]
