"""``python -m bench [MEASURE ...]``: run the measures, print one table, write JSON.

The table holds the figures the project tracks (:data:`TRACKED`), each with its goal
when it has one; ``--all`` adds every other figure the measures took. Every figure,
with its note, goes to ``bench/results/latest.json``; ``--markdown`` prints the tracked
table of that file as Markdown, for the README, without measuring anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import RESULTS_DIR, Figure, discover

# The figures the project tracks, in the table's order, with what each says (README).
TRACKED: dict[str, str] = {
    "start.ratio": "start-up to the rendered welcome, kiosk / bare Textual app (medians)",
    "start.kiosk.welcome": "start-up to the rendered welcome, kiosk",
    "start.bare_textual": "start-up to the rendered welcome, bare Textual app",
    "start.terminal.ratio": (
        "the kiosk command (launcher + kiosk) to its welcome on a pseudo-terminal / bare app"
    ),
    "start.terminal.kiosk": "the kiosk command to its welcome drawn on a pseudo-terminal",
    "start.terminal.bare": "a bare Textual app to its first screen on a pseudo-terminal",
    "import.must_not_load": "heavy modules loaded before the first frame (fpdf, peewee, argon2…)",
    "memory.kiosk.welcome_maxrss": "peak memory of the kiosk at the welcome",
    "memory.bare.maxrss": "peak memory of the bare Textual app",
    "oracle.login.spread": (
        "login, wrong password: largest difference between the medians of unknown / pending"
        " / active / locked addresses (50 tries each)"
    ),
    "oracle.activation.spread": "activation, wrong code: the same spread",
    "oracle.resend.spread": "a new activation code asked for: the same spread",
    "oracle.reset.spread": "a reset code asked for: the same spread",
    "oracle.staff_exit.spread": (
        "F12, wrong password: the same spread over unknown / active / locked / disabled staff"
    ),
    "signup.online_p50": "sign-up, the rectorat asked first (loopback): p50",
    "signup.online_p95": "… p95",
    "signup.offline_p50": "sign-up with the rectorat away: p50",
    "signup.offline_p95": "… p95",
    "national.pull_p95": (
        "one pull over HTTP at national size (1,000,000 accounts and registrations), p95"
    ),
    "national.new_kiosks_wall": "200 new kiosks' first pull at once, national size",
    "national.push_vs_empty": "push of 2,000 registrations, national store / empty store",
    "national.push": "… push at national size",
    "national.push_empty": "… push on an empty store",
    "national.store_size": "the national store's size on disk",
    "national.seed": "seeding the national store through the service's push",
    "journey.callback_max": (
        "whole candidate journey (Pilot): longest event-loop callback after a key press"
    ),
    "journey.callback_p99": "… p99 of the event-loop callbacks",
    "journey.tab_change_max": "… longest registration-form tab change (F7/F8)",
    "journey.callbacks_over_goal": "… callbacks over 50 ms after a key press",
    "argon2.hash": "argon2id hash (argon2-cffi defaults)",
    "argon2.verify": "argon2id verify",
    "pdf.render.typical": "confirmation PDF, typical candidate: render (warm)",
    "pdf.size.typical": "confirmation PDF, typical candidate: size",
    "pdf.render.cjk": "PDF with a Chinese name (fallback font subset): render",
    "pdf.size.cjk": "PDF with a Chinese name: size",
    "pdf.render.arabic": "PDF with an Arabic name (shaped): render",
    "save.first": "« Enregistrer » on the kiosk's store, first save (median)",
    "save.change": "« Enregistrer » on the kiosk's store, a change (median)",
    "sync.push_registrations": (
        "sync push, 2,000 registrations + accounts through HTTP to PostgreSQL"
    ),
    "sync.raw_upsert": "raw PostgreSQL upsert of the same rows, same run",
    "sync.push_vs_raw": "sync push / raw upsert",
    "sync.copy_upsert": "raw PostgreSQL upsert through COPY, same rows, same run",
    "sync.push_vs_copy": "sync push / COPY upsert",
    "sync.pull_changes": "sync pull of the same changes back to the kiosk",
    "sync.kiosks_at_once_wall": "200 kiosks pushing 1,000 registrations at once: all land once, in",
    "sync.kiosks_push_p50": "… push latency p50",
    "sync.kiosks_push_p95": "… push latency p95",
    "sync.kiosks_push_p99": "… push latency p99",
    "rush.registrations": "deadline rush, 100 kiosks × 10 candidates: registrations landed once",
    "rush.save_p50": "… « Enregistrer » at a kiosk, p50",
    "rush.save_p95": "… « Enregistrer » at a kiosk, p95",
    "rush.save_p99": "… « Enregistrer » at a kiosk, p99",
    "rush.push_p50": "… push latency p50",
    "rush.push_p95": "… push latency p95",
    "rush.push_p99": "… push latency p99",
    "rush.land_p50": "… time to land (save to acknowledged push) p50",
    "rush.land_p95": "… time to land p95",
    "rush.land_p99": "… time to land p99",
}


def _format_value(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _shown(figure: Figure) -> str:
    """The value as the table shows it: a digit more where it would read as its goal."""
    text = _format_value(figure.value)
    if figure.goal is not None and float(text) == figure.goal != figure.value:
        return f"{figure.value:.4g}"
    return text


def _ok(figure: Figure) -> str:
    return "-" if figure.ok is None else ("yes" if figure.ok else "NO")


def _table(figures: list[Figure]) -> str:
    headers = ("name", "value", "unit", "goal", "ok?")
    rows = [(f.name, _shown(f), f.unit, f.goal_text, _ok(f)) for f in figures]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    align = ("<", ">", "<", "<", "<")

    def line(cells) -> str:
        joined = "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))
        return joined.rstrip()

    out = [line(headers), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    notes = [(f.name, f.note) for f in figures if f.note]
    if notes:
        out.append("")
        out += [f"  {name}: {note}" for name, note in notes]
    return "\n".join(out)


def _tracked(figures: list[Figure]) -> list[Figure]:
    by_name = {f.name: f for f in figures}
    return [by_name[name] for name in TRACKED if name in by_name]


def _markdown(figures: list[Figure]) -> str:
    out = ["| figure | value | goal | met |", "| --- | --- | --- | --- |"]
    for f in _tracked(figures):
        goal = "" if f.goal is None else f.goal_text
        met = "" if f.ok is None else ("yes" if f.ok else "**no**")
        value = f"{_shown(f)} {f.unit}"
        out.append(f"| {TRACKED[f.name]} (`{f.name}`) | {value} | {goal} | {met} |")
    return "\n".join(out)


def _load(path) -> list[Figure]:
    report = json.loads(path.read_text(encoding="utf-8"))
    return [
        Figure(d["name"], d["value"], d["unit"], d["goal"], d["better"], d["note"])
        for d in report["figures"]
    ]


def main(argv: list[str] | None = None) -> int:
    measures = discover()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "only", nargs="*", metavar="MEASURE", help="run only these measures (default: all)"
    )
    parser.add_argument("--list", action="store_true", help="list the measures and exit")
    parser.add_argument(
        "--national",
        action="store_true",
        help="also the national-size measure (1,000,000 accounts in PostgreSQL: minutes)",
    )
    parser.add_argument(
        "--all", action="store_true", help="print every figure, not only the tracked ones"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the tracked figures of bench/results/latest.json as Markdown, and exit",
    )
    args = parser.parse_args(argv)

    if args.list:
        for m in measures:
            print(f"{m.name:<16} {m.summary}")
        return 0
    if args.markdown:
        print(_markdown(_load(RESULTS_DIR / "latest.json")))
        return 0
    unknown = set(args.only) - {m.name for m in measures}
    if unknown:
        parser.error(f"unknown measure(s): {', '.join(sorted(unknown))}")
    wanted = set(args.only) | ({"national"} if args.national else set())
    selected = [m for m in measures if m.name in wanted or (not args.only and not m.on_request)]

    figures: list[Figure] = []
    errors: dict[str, str] = {}
    started = time.perf_counter()
    for m in selected:
        print(f"bench: {m.name} …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            figures.extend(m.run())
        except Exception:  # a broken measure is reported, and the others still run
            errors[m.name] = traceback.format_exc()
            print(f"bench: {m.name} failed:\n{errors[m.name]}", file=sys.stderr)
        print(
            f"bench: {m.name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True
        )
    elapsed = time.perf_counter() - started

    shown = figures if args.all or args.only else _tracked(figures)
    print()
    print(_table(shown))
    if len(shown) < len(figures):
        more = len(figures) - len(shown)
        print(f"\n{more} more figures in bench/results/latest.json (--all prints them)")
    if errors:
        print(f"\nfailed measures: {', '.join(errors)} (see stderr)")

    RESULTS_DIR.mkdir(exist_ok=True)
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "elapsed_s": round(elapsed, 1),
        "measures": [m.name for m in selected],
        "figures": [f.as_dict() for f in figures],
        "errors": errors,
    }
    path = RESULTS_DIR / "latest.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written = path.relative_to(RESULTS_DIR.parent.parent)
    print(f"\n{len(figures)} figures in {elapsed:.0f} s; written to {written}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
