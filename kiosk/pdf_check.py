"""Whether some bytes are a PDF a kiosk may keep and print: the same check where a
document is published (the rectorat) and where it arrives (each kiosk).

A structural check, with no PDF library: the header, the end-of-file marker, and a
``startxref`` offset that points at a cross-reference table or stream inside the file.
A text, an image or a truncated upload renamed ``.pdf`` fails it; a file that passes is
printed by CUPS and shown by any reader.
"""

from __future__ import annotations

import hashlib
import re

MAX_PDF_BYTES = 10 * 1024 * 1024
"""The largest document published for a candidate: a scanned convocation is ~1 MB."""

_TAIL = 2048
_START_XREF = re.compile(rb"startxref\s+(\d{1,12})\s+%%EOF\s*$")
_XREF_AT = re.compile(rb"\s*(xref|\d+\s+\d+\s+obj)")


def pdf_problem(data: bytes, limit: int = MAX_PDF_BYTES) -> str | None:
    """Why ``data`` is refused (``empty``, ``too_large``, ``not_pdf``), or ``None``."""
    if not data:
        return "empty"
    if len(data) > limit:
        return "too_large"
    if not data.startswith(b"%PDF-"):
        return "not_pdf"
    tail = data[-_TAIL:]
    # The last startxref of the file: an updated PDF has one per revision.
    found = list(_START_XREF.finditer(tail.rstrip(b"\x00")))
    if not found:
        return "not_pdf"
    offset = int(found[-1].group(1))
    if offset >= len(data) or not _XREF_AT.match(data, offset):
        return "not_pdf"
    return None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
