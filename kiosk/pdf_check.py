"""Whether some bytes are a PDF a kiosk may keep and print: the same check where a
document is published (the rectorat) and where it arrives (each kiosk).

A structural check, with no PDF library: the header, the end-of-file marker, and a
``startxref`` offset that points at a cross-reference table or stream inside the file.
A text, an image or a truncated upload renamed ``.pdf`` fails it; a file that passes is
printed by CUPS and shown by any reader.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat

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


class NotReadable(Exception):
    """Why a file cannot be read as a document: ``reason`` (``no_file``, ``not_allowed``,
    ``folder``, ``not_a_file``, ``too_large``, ``unreadable``) and the system's words."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def read_document(path: str, limit: int = MAX_PDF_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` and one more (which
    :func:`pdf_problem` then refuses); raises :class:`NotReadable`. Never waits on a named
    pipe or a device, and never reads more than that into memory (``/dev/zero``)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (FileNotFoundError, NotADirectoryError):
        raise NotReadable("no_file") from None
    except PermissionError:
        raise NotReadable("not_allowed") from None
    except OSError as error:
        raise NotReadable("unreadable", str(error.strerror or error)) from None
    kind = os.fstat(descriptor)
    if not stat.S_ISREG(kind.st_mode):
        os.close(descriptor)
        raise NotReadable("folder" if stat.S_ISDIR(kind.st_mode) else "not_a_file")
    with open(descriptor, "rb") as handle:
        if kind.st_size > limit:
            raise NotReadable("too_large")
        try:
            return handle.read(limit + 1)
        except OSError as error:
            raise NotReadable("unreadable", str(error.strerror or error)) from None
