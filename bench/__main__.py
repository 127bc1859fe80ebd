"""``python -m bench [MEASURE ...]``: run the measures, print one table, write JSON."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone

from bench import RESULTS_DIR, Figure, discover


def _format_value(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _table(figures: list[Figure]) -> str:
    headers = ("name", "value", "unit", "goal", "ok?")
    rows = [
        (
            f.name,
            _format_value(f.value),
            f.unit,
            f.goal_text,
            "-" if f.ok is None else ("yes" if f.ok else "NO"),
        )
        for f in figures
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    align = ("<", ">", "<", "<", "<")
    line = lambda cells: "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()  # noqa: E731
    out = [line(headers), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    notes = [(f.name, f.note) for f in figures if f.note]
    if notes:
        out.append("")
        out += [f"  {name}: {note}" for name, note in notes]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    measures = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", metavar="MEASURE", help="run only these measures (default: all)")
    parser.add_argument("--list", action="store_true", help="list the measures and exit")
    args = parser.parse_args(argv)

    if args.list:
        for m in measures:
            print(f"{m.name:<16} {m.summary}")
        return 0
    unknown = set(args.only) - {m.name for m in measures}
    if unknown:
        parser.error(f"unknown measure(s): {', '.join(sorted(unknown))}")
    selected = [m for m in measures if not args.only or m.name in args.only]

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
        print(f"bench: {m.name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started

    print()
    print(_table(figures))
    if errors:
        print(f"\nfailed measures: {', '.join(errors)} (see stderr)")

    RESULTS_DIR.mkdir(exist_ok=True)
    report = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
    print(f"\n{len(figures)} figures in {elapsed:.0f} s; written to {path.relative_to(RESULTS_DIR.parent.parent)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
