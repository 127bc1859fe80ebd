"""« Mes documents »: the confirmation of registration and the list of pièces, as one PDF;
the notice of an address change reported after the close, as another.

``render_confirmation`` lays out, on A4 pages:

1. the confirmation: académie, exam session, reference (and the rectorat's number once
   it has one), version, date of the last save, the candidate's e-mail and a Code 39
   barcode of the reference for the exam office's scanner; the Modalités and the
   declarations the candidate ticked, in the words of their boxes; every answer of the
   form, as ``registration_form.summary`` words it; what to do to make the registration
   definitive, the rectorat's address and a box « Date et signature du candidat »;
2. on a new page, the pièces justificatives this candidate must post, each with a box
   to tick.

``render_address_notice`` lays out, on one A4 page, the « Avis de changement d'adresse »
for the exam office: the same heading and barcode, the candidate, reference (and number),
e-mail and when the change was reported; the old and the new address side by side; that
the exam office reports the change on the file and the candidate keeps the notice (or
dates, signs and posts it); the exam office's address and a box for the signature.

Every fact about the rectorat (its address, e-mail, telephone, the date by which the
paper file must arrive) comes from the exam session; one the session does not give is
left out, sentence and label included.

Every page says « Page X/Y ». The same inputs give the same bytes: the creation date
is ``now`` (the notice's, ``reported_at``) and nothing else varies (fpdf2 derives the
file /ID from the content).

fpdf2 (with fontTools and Pillow) takes a few tenths of a second to import, so it is
imported when a document is rendered only: importing this module loads nothing but
the standard library and the kiosk's own modules.

Text and fonts
--------------
Fonts are DejaVu Sans (regular and bold), embedded as subsets. A character DejaVu
lacks (Chinese, Japanese, Korean…) is drawn from Droid Sans Fallback (4 MB), which is
embedded only in a document that needs it. Each font file is read once per process
(``_master_ttfont``, ~0.4 s for the fallback font, or ahead with ``warm_up``) and each
document subsets a copy of it, so that the fallback font adds ~20 ms to a document.
Before any text is drawn it is made printable:

- it is put in NFC, so that « Zoe » + U+0301 prints and reads back as « Zoé »;
- terminal escape sequences are removed whole (« ESC[31m » leaves nothing), then the
  other control and format characters (categories Cc and Cf: zero-width joiners,
  bidi overrides…); tabs and line breaks become one space;
- variation selectors and emoji skin-tone modifiers that no font has are dropped;
- any other character that no shipped font has (emoji, private-use, unassigned) is
  replaced by U+FFFD « � », which DejaVu draws: the reader sees that something was
  there, and nothing crashes.

Arabic and Hebrew: when the optional ``uharfbuzz`` package is installed, fpdf2's text
shaping is switched on for each text holding right-to-left letters: Arabic letters are
joined and the text runs right to left. Without it, the letters are printed unjoined
and left to right (so a reader sees them in reverse order); nothing fails, and the
text still reads back from the PDF.
"""

from __future__ import annotations

import copy
import importlib
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from kiosk import formatting
from kiosk.assets import asset
from kiosk.exam_sessions import ExamSession
from kiosk.i18n import Messages, french
from kiosk.pieces import required_pieces
from kiosk.registration_form import summary, ticked_declarations

if TYPE_CHECKING:  # pragma: no cover
    from kiosk.store.models import Registration

REGULAR_FONT = "DejaVuSans.ttf"
BOLD_FONT = "DejaVuSans-Bold.ttf"
FALLBACK_FONT = "DroidSansFallbackFull.ttf"
SUBSTITUTE = "\ufffd"

_FAMILY = "DejaVu"
_FALLBACK_FAMILY = "DroidFallback"
# Terminal escape sequences (CSI « ESC [ … m », OSC « ESC ] … BEL »), removed whole.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|\x9b[0-?]*[ -/]*[@-~]"
)
_SPACES = re.compile(r"[\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029 ]+")
# Marks that only modify the character before them: without a glyph they are dropped.
_MODIFIERS = re.compile("[\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0100-\U000e01ef\u20e3]")

# Layout, in millimetres.
_MARGIN = 15.0
_LABEL_WIDTH = 68.0
_BARCODE_WIDE = 0.9  # wide bar; narrow bars are a third (0.3 mm): any office scanner reads it
_BARCODE_HEIGHT = 13.0
_SIGNATURE_HEIGHT = 36.0
_GREY = (90, 90, 90)
_RULE = (170, 170, 170)
_SHADE = (232, 232, 232)


def printable(text: Any, has_glyph: Callable[[str], bool] = lambda c: True) -> str:
    """``text`` as it can be drawn: NFC, no control characters, no glyph-less characters.

    See the module's docstring for the rules; ``has_glyph`` says whether some font of
    the document draws a character.
    """
    text = unicodedata.normalize("NFC", str(text if text is not None else ""))
    out: list[str] = []
    for char in _SPACES.sub(" ", _ESCAPES.sub("", text)):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs"):
            continue
        if has_glyph(char) and category not in ("Co", "Cn"):
            out.append(char)
        elif _MODIFIERS.match(char) or category in ("Mn", "Me"):
            continue
        else:
            out.append(SUBSTITUTE)
    return "".join(out).strip()


def right_to_left(text: str) -> bool:
    """Whether ``text`` holds right-to-left letters (Arabic, Hebrew…)."""
    return any(unicodedata.bidirectional(c) in ("R", "AL") for c in text)


@cache
def shaping_available() -> bool:
    """Whether fpdf2 can shape text: it needs the optional ``uharfbuzz`` package."""
    try:
        importlib.import_module("uharfbuzz")
    except ImportError:
        return False
    return True


@contextmanager
def _shaped(pdf: Any, text: str) -> Iterator[None]:
    """Shaping on while ``text`` is measured or drawn, if it is right to left and can be shaped.

    Only such texts are shaped: shaping everything makes the document slower and,
    with per-glyph positioning, half as large again.
    """
    if not (right_to_left(text) and shaping_available()):
        yield
        return
    pdf.set_text_shaping(True)
    try:
        yield
    finally:
        pdf.set_text_shaping(False)


# Whether a font's parsed metrics are kept between documents (see ``_add_font``).
REUSE_PARSED_FONTS = True
_parsed_lock = threading.Lock()


def _parsed_font(filename: str, family: str, style: str) -> Any:
    """The font as fpdf2 parses it, once per process."""
    with _parsed_lock:
        return _parse_font(str(asset("fonts", filename)), family, style)


@cache
def _parse_font(path: str, family: str, style: str) -> Any:
    from fpdf import FPDF

    scratch = FPDF()
    scratch.add_font(family, style, path)
    return scratch.fonts[f"{family.lower()}{style}"]


def _add_font(pdf: Any, family: str, style: str, filename: str) -> None:
    """``pdf.add_font``, parsing the font's character map and widths once per process.

    fpdf2 reads them again for each document, ~15 ms for each DejaVu face, though they
    never change. The document gets a copy that shares them, with its own subset and
    its own fontTools object, which fpdf2's subsetter cuts down at output. This leans on
    fpdf2's ``TTFFont`` attributes; a test checks that the bytes are exactly those of a
    plain ``add_font``, and ``REUSE_PARSED_FONTS = False`` turns it off.
    """
    path = str(asset("fonts", filename))
    if not REUSE_PARSED_FONTS:
        pdf.add_font(family, style, path)
        return
    from fpdf.fonts import SubsetMap

    # Shallow: the character map and widths are shared (fpdf2 only ever adds the default
    # width of an absent character to the widths, the same for every document).
    font = copy.copy(_parsed_font(filename, family, style))
    font.i = len(pdf.fonts) + 1
    font.ttfont = _document_ttfont(path)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font.subset = SubsetMap(font)
    pdf.fonts[font.fontkey] = font


# The tables fpdf2 drops from every subset (fpdf/output.py, ``_add_fonts``): a document's
# font has none of them (the subsetter would read the layout tables, DejaVu's large, first).
_DROPPED_TABLES = frozenset(
    ("FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT", "CBLC", "EBDT",
     "EBLC", "EBSC", "SVG ", "CPAL", "COLR")
)  # fmt: skip


@cache
def _master_ttfont(path: str) -> Any:
    """The font file read once per process, for :func:`_document_ttfont` to copy: every
    table fpdf2's subsetter keeps is read now (the fallback font's 49,000 glyphs and
    their names took ~0.2 s at each document), the glyphs left as their bytes."""
    from fontTools.ttLib import TTFont

    font = TTFont(path, recalcTimestamp=False, lazy=True)
    font.getGlyphOrder()
    for tag in font.keys():
        if tag not in _DROPPED_TABLES and tag != "GlyphOrder":
            font[tag]
    if "cmap" in font:
        for subtable in font["cmap"].tables:
            subtable.ensureDecompiled()
    return font


class _GlyphCopies(dict):
    """A document's glyphs: each one read is a copy, so the subsetter, which rewrites
    the glyphs it keeps (component ids, trimmed bytes), never touches the master's."""

    def __getitem__(self, name: str) -> Any:
        return copy.copy(dict.__getitem__(self, name))


def _document_ttfont(path: str) -> Any:
    """A fontTools font for one document, as ``TTFont(path, lazy=True)`` would read it,
    made from the process's master copy: tables copied (the subsetter replaces their
    contents, never edits what they hold, glyphs aside), glyphs copied when read."""
    with _parsed_lock:
        master = _master_ttfont(path)
    # Left out: the tables fpdf2 drops, and ``kern`` where there is a GPOS, as the
    # subsetter does (its ``legacy_kern``).
    dropped = _DROPPED_TABLES | ({"kern"} if "GPOS" in master else set())
    font = copy.copy(master)
    font.tables = {
        tag: copy.copy(table) for tag, table in master.tables.items() if tag not in dropped
    }
    if master.reader is not None:
        font.reader = copy.copy(master.reader)
        font.reader.tables = {
            tag: entry for tag, entry in master.reader.tables.items() if tag not in dropped
        }
    glyf = font.tables.get("glyf")
    if glyf is not None:
        glyf.glyphs = _GlyphCopies(glyf.glyphs)
    cmap = font.tables.get("cmap")
    if cmap is not None:
        cmap.tables = [copy.copy(subtable) for subtable in cmap.tables]
    return font


def warm_up() -> None:
    """Import fpdf2 and read every font once, the fallback font's too: the first document
    of the process is then as quick as the next (the fallback font alone takes ~0.4 s
    to read). For a thread started once the kiosk shows its first screen."""
    _document_class()
    for filename, family, style in (
        (REGULAR_FONT, _FAMILY, ""),
        (BOLD_FONT, _FAMILY, "B"),
        (FALLBACK_FONT, _FALLBACK_FAMILY, ""),
    ):
        _parsed_font(filename, family, style)
        with _parsed_lock:
            _master_ttfont(str(asset("fonts", filename)))


@cache
def _document_class() -> type:
    """The FPDF subclass, made on first use so that fpdf2 is imported then only."""
    from fpdf import FPDF

    class ConfirmationPDF(FPDF):
        footer_left = ""
        footer_right = ""

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(_FAMILY, "", 8)
            self.set_text_color(*_GREY)
            width = self.w - 2 * _MARGIN
            self.cell(width * 0.75, 5, self.footer_left, align="L")
            self.cell(
                width * 0.25,
                5,
                self.footer_right.format(nb=self.str_alias_nb_pages, page=self.page_no()),
                align="R",
            )
            self.set_text_color(0)

    return ConfirmationPDF


def render_confirmation(
    registration: Registration,
    email: str,
    session: ExamSession,
    now: datetime,
    messages: Messages = french,
) -> bytes:
    """The confirmation of registration and the list of pièces, as the bytes of one PDF."""
    m = messages
    answers = registration.answers or {}
    reference = registration.reference
    sections = summary(answers, session, m)
    pieces = [
        (m(f"pieces.{piece}.title"), m(f"pieces.{piece}.why"))
        for piece in required_pieces(answers, session)
    ]
    contact = session.contact
    deadline = formatting.day(session.paper_deadline, m) if session.paper_deadline else ""
    name = _candidate_name(answers)
    header_rows = [(m("document.reference"), reference)]
    if registration.number:
        header_rows.append((m("document.number"), str(registration.number)))
    header_rows += [
        (m("document.version"), str(registration.version)),
        (m("document.saved_at"), formatting.instant(registration.saved_at, session.zone, m)),
        (m("document.email"), email),
    ]
    contact_lines = list(contact.postal_lines())
    contact_reach = list(contact.reach_lines(m))
    steps = [m(f"document.step_{n}") for n in (1, 2, 3)]
    steps.append(m("document.step_4_by", deadline=deadline) if deadline else m("document.step_4"))
    pieces_intro = m("document.pieces_intro")
    if deadline:
        pieces_intro = f"{pieces_intro} {m('document.pieces_deadline', deadline=deadline)}"
    declarations = [f"☒ {line}" for line in ticked_declarations(answers, m)]
    rules = [line for line in m("form.rules.text").splitlines() if line.strip()]

    every_text: Iterable[str] = [
        name,
        session.title,
        session.academie_heading,
        *(text for row in header_rows for text in row),
        *(
            text
            for heading, rows in sections
            for text in (heading, *(t for row in rows for t in row))
        ),
        *(text for piece in pieces for text in piece),
        *declarations,
        *rules,
        *contact_lines,
        *contact_reach,
    ]

    pdf, text = _new_document(every_text)
    _describe(
        pdf,
        text,
        session,
        m,
        title=m("document.pdf_title", title=session.title),
        subject=m("document.pdf_subject", reference=reference, version=registration.version),
        reference=reference,
        moment=now,
        footer=m("document.footer", reference=reference, version=registration.version),
    )
    width = pdf.w - 2 * _MARGIN

    # -- the confirmation ---------------------------------------------------------------
    pdf.add_page()
    _header(pdf, text, session, m("document.title"), reference)

    _pairs(pdf, [(text(k), text(v)) for k, v in header_rows], width, size=10, bold_values=True)
    pdf.ln(3)
    pdf.set_font(_FAMILY, "", 9)
    pdf.multi_cell(
        width, 4.5, text(m("document.answers_intro")), new_x="LMARGIN", new_y="NEXT", align="L"
    )
    pdf.ln(2)

    if declarations:
        # What the candidate accepted on the Modalités tab, signed with the rest.
        _heading(pdf, text(m("form.tabs.modalites")), width)
        pdf.set_font(_FAMILY, "", 8.5)
        pdf.set_text_color(*_GREY)
        for line in rules:
            pdf.multi_cell(width, 4.2, text(line), new_x="LMARGIN", new_y="NEXT", align="L")
            pdf.ln(0.6)
        pdf.set_text_color(0)
        pdf.ln(1)
        pdf.set_font(_FAMILY, "B", 9)
        for line in declarations:
            pdf.multi_cell(width, 4.8, text(line), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.ln(3)

    for heading, rows in sections:
        _heading(pdf, text(heading), width)
        _pairs(pdf, [(text(label), text(answer)) for label, answer in rows], width, size=9)
        pdf.ln(3)

    # What to do, where to send it, and the signature: kept together on one page.
    steps = [text(step) for step in steps]
    pdf.set_font(_FAMILY, "", 9.5)
    steps_height = sum(
        pdf.multi_cell(width - 7, 5, step, dry_run=True, output="HEIGHT") + 0.8 for step in steps
    )
    contact_height = _contact_height(contact_lines + contact_reach)
    if (
        pdf.get_y() + 8 + steps_height + 2 + max(contact_height, _SIGNATURE_HEIGHT)
        > pdf.page_break_trigger
    ):
        pdf.add_page()
    _heading(pdf, text(m("document.steps_heading")), width)
    pdf.set_font(_FAMILY, "", 9.5)
    for number, step in enumerate(steps, 1):
        pdf.cell(7, 5, f"{number}.", new_x="RIGHT", new_y="TOP")
        pdf.multi_cell(width - 7, 5, step, new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.ln(0.8)
    pdf.ln(2)

    _contact_and_signature(
        pdf,
        text,
        m("document.contact_heading"),
        contact_lines + contact_reach,
        m("document.signature"),
        m("document.signature_hint"),
        width,
    )

    # -- the pièces justificatives -------------------------------------------------------
    pdf.add_page()
    pdf.set_font(_FAMILY, "B", 15)
    pdf.multi_cell(
        width, 8, text(m("document.pieces_title")), new_x="LMARGIN", new_y="NEXT", align="L"
    )
    pdf.set_font(_FAMILY, "", 9.5)
    pieces_for = text(m("document.pieces_for", name=name or "—", reference=reference))
    with _shaped(pdf, pieces_for):
        pdf.multi_cell(width, 5, pieces_for, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.multi_cell(
        width,
        5,
        text(pieces_intro),
        new_x="LMARGIN",
        new_y="NEXT",
        align="L",
    )
    pdf.ln(4)
    box, indent = 4.5, 8
    for title, why in pieces:
        title, why = text(title), text(why)
        pdf.set_font(_FAMILY, "B", 10)
        needed = pdf.multi_cell(width - indent, 5, title, dry_run=True, output="HEIGHT")
        pdf.set_font(_FAMILY, "", 9)
        needed += pdf.multi_cell(width - indent, 4.5, why, dry_run=True, output="HEIGHT")
        if pdf.get_y() + needed > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_line_width(0.3)
        pdf.rect(_MARGIN, y + 0.4, box, box)
        pdf.set_line_width(0.2)
        pdf.set_x(_MARGIN + indent)
        pdf.set_font(_FAMILY, "B", 10)
        pdf.multi_cell(width - indent, 5, title, new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_x(_MARGIN + indent)
        pdf.set_font(_FAMILY, "", 9)
        pdf.set_text_color(*_GREY)
        pdf.multi_cell(width - indent, 4.5, why, new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_text_color(0)
        pdf.ln(3.5)

    pdf.ln(2)
    _heading(pdf, text(m("document.contact_heading")), width)
    pdf.set_font(_FAMILY, "", 9.5)
    pdf.multi_cell(
        width, 4.6, text(", ".join(contact_lines)), new_x="LMARGIN", new_y="NEXT", align="L"
    )
    return bytes(pdf.output())


def render_address_notice(
    registration: Registration,
    email: str,
    old: Mapping[str, str],
    new: Mapping[str, str],
    session: ExamSession,
    reported_at: datetime,
    messages: Messages = french,
) -> bytes:
    """The « Avis de changement d'adresse » of a change reported after the close, as the
    bytes of one PDF: for the exam office, which reports the change on the file; the
    candidate keeps it, or dates, signs and posts it.

    ``old`` and ``new`` are the addresses before and after, by the names of
    ``kiosk.registrations.ADDRESS_FIELDS``; ``reported_at`` is shown in the session's zone.
    """
    m = messages
    answers = registration.answers or {}
    reference = registration.reference
    moment = reported_at if reported_at.tzinfo else reported_at.replace(tzinfo=UTC)
    name = _candidate_name(answers)
    rows = [(m("notice.candidate"), name), (m("document.reference"), reference)]
    if registration.number:
        rows.append((m("document.number"), str(registration.number)))
    rows += [
        (m("document.email"), email),
        (m("notice.reported_at"), formatting.instant(moment, session.zone, m)),
    ]
    contact = session.contact
    contact_lines = [*contact.postal_lines(), *contact.reach_lines(m)]
    # « At the address below » only when the session gives one.
    follow_up = m("notice.follow_up_post") if contact.address else m("notice.follow_up")
    headings = (m("notice.old_address"), m("notice.new_address"))
    wordings = [
        m("notice.title"),
        m("notice.recipient"),
        m("notice.intro"),
        follow_up,
        *headings,
        m("notice.labelled", label=m("form.phone.label"), value=""),
        m("notice.signature"),
        m("notice.signed_at"),
        m("notice.contact_heading"),
    ]
    every_text: Iterable[str] = [
        session.title,
        session.academie_heading,
        *(value for row in rows for value in row),
        *(str(value or "") for address in (old, new) for value in address.values()),
        *wordings,
        *contact_lines,
    ]

    pdf, text = _new_document(every_text)
    _describe(
        pdf,
        text,
        session,
        m,
        title=m("notice.pdf_title", title=session.title),
        subject=m("notice.pdf_subject", reference=reference),
        reference=reference,
        moment=moment,
        footer=m("notice.footer", reference=reference),
        lang="en-GB" if m.language == "en" else "fr-FR",
    )
    width = pdf.w - 2 * _MARGIN
    half = (width - 6) / 2

    pdf.add_page()
    _header(pdf, text, session, m("notice.title"), reference)
    pdf.set_font(_FAMILY, "B", 10)
    pdf.multi_cell(width, 5, text(m("notice.recipient")), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(2)
    _pairs(pdf, [(text(k), text(v)) for k, v in rows], width, size=10, bold_values=True)
    pdf.ln(3)
    pdf.set_font(_FAMILY, "", 9.5)
    pdf.multi_cell(width, 5, text(m("notice.intro")), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(3)

    # The two addresses side by side, the old one on the left; kept together on one page.
    blocks = [
        (text(heading), _address_lines(address, text, m), style)
        for heading, address, style in zip(headings, (old, new), ("", "B"), strict=True)
    ]
    needed = 0.0
    for _, lines, style in blocks:
        pdf.set_font(_FAMILY, style, 10)
        needed = max(needed, 8 + sum(_column_height(pdf, line, half, 5) for line in lines))
    if pdf.get_y() + needed > pdf.page_break_trigger:
        pdf.add_page()
    top = pdf.get_y()
    bottom = top
    for index, (heading, lines, style) in enumerate(blocks):
        x = _MARGIN + index * (half + 6)
        pdf.set_xy(x, top)
        pdf.set_font(_FAMILY, "B", 10.5)
        pdf.set_fill_color(*_SHADE)
        pdf.multi_cell(
            half, 7, heading, fill=True, padding=(0, 2), new_x="LEFT", new_y="NEXT", align="L"
        )
        pdf.set_xy(x, pdf.get_y() + 1)
        pdf.set_font(_FAMILY, style, 10)
        for line in lines:
            with _shaped(pdf, line):
                pdf.multi_cell(half, 5, line, new_x="LEFT", new_y="NEXT", align="L")
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(_MARGIN, bottom + 4)

    pdf.set_font(_FAMILY, "", 9.5)
    pdf.multi_cell(width, 5, text(follow_up), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(4)
    if (
        pdf.get_y() + max(_contact_height(contact_lines), _SIGNATURE_HEIGHT)
        > pdf.page_break_trigger
    ):
        pdf.add_page()
    _contact_and_signature(
        pdf,
        text,
        m("notice.contact_heading"),
        contact_lines,
        m("notice.signature"),
        m("notice.signed_at"),
        width,
    )
    return bytes(pdf.output())


def _candidate_name(answers: Mapping[str, Any]) -> str:
    """« Prénoms Nom », as the form's answers give them."""
    return " ".join(str(answers.get(key) or "") for key in ("given_names", "family_name")).strip()


def _address_lines(
    address: Mapping[str, str], text: Callable[[Any], str], messages: Messages
) -> list[str]:
    """An address as a letter writes it, printable, without its empty lines; the
    telephone labelled. « — » for an address with nothing in it."""

    # The fields of kiosk.registrations.ADDRESS_FIELDS (not imported: it loads the store).
    def value(field: str) -> str:
        return text(address.get(field))

    lines = [
        value("address_line1"),
        value("address_line2"),
        " ".join(part for part in (value("postal_code"), value("town")) if part),
        value("country"),
    ]
    if phone := value("phone"):
        label = messages("form.phone.label")
        lines.append(text(messages("notice.labelled", label=label, value=phone)))
    return [line for line in lines if line] or ["—"]


def _column_height(pdf: Any, line: str, width: float, height: float) -> float:
    with _shaped(pdf, line):
        return float(pdf.multi_cell(width, height, line, dry_run=True, output="HEIGHT"))


def _new_document(every_text: Iterable[str]) -> tuple[Any, Callable[[Any], str]]:
    """An A4 document with its fonts, and the function that makes a text printable in it.

    DejaVu Sans, regular and bold; the fallback font too when one of the characters of
    ``every_text`` (every text the document will draw) needs it.
    """
    pdf = _document_class()(orientation="P", unit="mm", format="A4")
    _add_font(pdf, _FAMILY, "", REGULAR_FONT)
    _add_font(pdf, _FAMILY, "B", BOLD_FONT)
    loaded = [pdf.fonts[key] for key in pdf.fonts]

    def has_glyph(char: str) -> bool:
        return any(ord(char) in font.cmap for font in loaded)

    chars = {c for text in every_text for c in unicodedata.normalize("NFC", str(text))}
    fallback_names = [_FAMILY]
    lacking = [c for c in chars if not has_glyph(c) and unicodedata.category(c)[0] not in "CZ"]
    # The fallback font is embedded only if it draws one of them (not for an emoji alone).
    if lacking and any(
        ord(c) in _parsed_font(FALLBACK_FONT, _FALLBACK_FAMILY, "").cmap for c in lacking
    ):
        _add_font(pdf, _FALLBACK_FAMILY, "", FALLBACK_FONT)
        loaded = [pdf.fonts[key] for key in pdf.fonts]
        fallback_names.append(_FALLBACK_FAMILY)
    # Bold DejaVu lacks a few glyphs of the regular one: those come from the regular face.
    pdf.set_fallback_fonts(fallback_names, exact_match=False)

    def text(value: Any) -> str:
        return printable(value, has_glyph)

    return pdf, text


def _describe(
    pdf: Any,
    text: Callable[[Any], str],
    session: ExamSession,
    messages: Messages,
    *,
    title: str,
    subject: str,
    reference: str,
    moment: datetime,
    footer: str,
    lang: str = "fr-FR",
) -> None:
    """The document's metadata (the rectorat as its author), margins and footer."""
    pdf.set_title(text(title))
    pdf.set_author(text(session.contact.name))
    pdf.set_subject(text(subject))
    pdf.set_creator(text(messages("document.creator")))
    pdf.set_keywords(reference)
    pdf.set_lang(lang)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    pdf.set_creation_date(moment.astimezone(session.zone))
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(True, margin=18)
    pdf.footer_left = text(footer)
    pdf.footer_right = text(messages("document.page", page="{page}", pages="{nb}"))


def _header(
    pdf: Any, text: Callable[[Any], str], session: ExamSession, title: str, reference: str
) -> None:
    """The top of a first page: académie, session and title on the left, the reference's
    barcode on the right, the reference under it."""
    barcode_width = _barcode_width(reference)
    barcode_x = pdf.w - _MARGIN - barcode_width
    title_width = barcode_x - _MARGIN - 6
    pdf.set_font(_FAMILY, "", 9)
    pdf.multi_cell(
        title_width,
        4.5,
        text(session.academie_heading),
        new_x="LMARGIN",
        new_y="NEXT",
        align="L",
    )
    pdf.set_font(_FAMILY, "B", 11)
    pdf.multi_cell(title_width, 5.5, text(session.title), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(1.5)
    pdf.set_font(_FAMILY, "B", 17)
    pdf.multi_cell(title_width, 8, text(title), new_x="LMARGIN", new_y="NEXT", align="L")
    below_title = pdf.get_y()

    pdf.set_fill_color(0)
    pdf.code39(f"*{reference}*", barcode_x, _MARGIN, w=_BARCODE_WIDE, h=_BARCODE_HEIGHT)
    pdf.set_xy(barcode_x, _MARGIN + _BARCODE_HEIGHT + 0.5)
    pdf.set_font(_FAMILY, "B", 11)
    pdf.cell(barcode_width, 5.5, reference, align="C")
    pdf.set_y(max(below_title, _MARGIN + _BARCODE_HEIGHT + 6) + 3)


def _contact_height(lines: list[str]) -> float:
    """About the height of :func:`_contact_and_signature`'s contact column."""
    return 5 + 4.6 * len(lines)


def _contact_and_signature(
    pdf: Any,
    text: Callable[[Any], str],
    heading: str,
    lines: list[str],
    signature: str,
    hint: str,
    width: float,
) -> None:
    """Where to post the paper (its first line, the rectorat, in bold) on the left; on the
    right, a box for the candidate's signature. The caller keeps it on one page."""
    half = (width - 6) / 2
    top = pdf.get_y()
    pdf.set_font(_FAMILY, "B", 9.5)
    pdf.cell(half, 5, text(heading), new_x="LMARGIN", new_y="NEXT")
    for index, line in enumerate(lines):
        pdf.set_font(_FAMILY, "B" if index == 0 else "", 9.5)
        pdf.multi_cell(half, 4.6, text(line), new_x="LMARGIN", new_y="NEXT", align="L")
    contact_bottom = pdf.get_y()

    box_x = _MARGIN + half + 6
    box_height = max(contact_bottom - top, _SIGNATURE_HEIGHT)
    pdf.set_draw_color(0)
    pdf.set_line_width(0.4)
    pdf.rect(box_x, top, half, box_height)
    pdf.set_xy(box_x + 2, top + 1.5)
    pdf.set_font(_FAMILY, "B", 9.5)
    pdf.multi_cell(half - 4, 5, text(signature), new_x="LEFT", new_y="NEXT", align="L")
    pdf.set_font(_FAMILY, "", 8.5)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(half - 4, 4.5, text(hint), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_text_color(0)
    pdf.set_line_width(0.2)
    pdf.set_y(top + box_height + 2)


def _barcode_width(reference: str) -> float:
    # Code 39: each character is 3 wide and 6 narrow elements, then a narrow gap.
    narrow = _BARCODE_WIDE / 3
    return (len(reference) + 2) * (3 * _BARCODE_WIDE + 7 * narrow) - narrow


def _heading(pdf: Any, heading: str, width: float) -> None:
    """A shaded bar with a bold heading, kept with at least a few lines of what follows."""
    if pdf.get_y() + 7 + 15 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.set_font(_FAMILY, "B", 10.5)
    pdf.set_fill_color(*_SHADE)
    pdf.multi_cell(
        width, 7, heading, fill=True, padding=(0, 2), new_x="LMARGIN", new_y="NEXT", align="L"
    )
    pdf.ln(1)


def _pairs(
    pdf: Any, rows: list[tuple[str, str]], width: float, size: float, bold_values: bool = False
) -> None:
    """Labels and answers as a two-column table: long values wrap, and a row is never split."""
    line, pad, inset = size * 0.5, 1.1, 1.5
    label_width, value_width = _LABEL_WIDTH - 2 * inset, width - _LABEL_WIDTH - 2 * inset
    value_style = "B" if bold_values else ""
    pdf.set_draw_color(*_RULE)
    for label, value in rows:
        value = value or "—"
        pdf.set_font(_FAMILY, "", size)
        label_lines = _line_count(pdf, label, label_width, line)
        pdf.set_font(_FAMILY, value_style, size)
        with _shaped(pdf, value):
            value_lines = _line_count(pdf, value, value_width, line)
        height = max(label_lines, value_lines) * line + 2 * pad
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
        top = pdf.get_y()
        pdf.set_font(_FAMILY, "", size)
        pdf.set_text_color(*_GREY)
        _wrapped(pdf, _MARGIN + inset, top + pad, label, label_width, line, label_lines)
        pdf.set_text_color(0)
        pdf.set_font(_FAMILY, value_style, size)
        with _shaped(pdf, value):
            _wrapped(
                pdf,
                _MARGIN + _LABEL_WIDTH + inset,
                top + pad,
                value,
                value_width,
                line,
                value_lines,
            )
        bottom = max(top + height, pdf.get_y() + pad)
        pdf.line(_MARGIN, bottom, _MARGIN + width, bottom)
        pdf.set_xy(_MARGIN, bottom)
    pdf.set_draw_color(0)


def _line_count(pdf: Any, text: str, width: float, line: float) -> int:
    # Most answers fit on one line: measuring them is much cheaper than a dry run.
    if pdf.get_string_width(text) <= width - 2 * pdf.c_margin:
        return 1
    return len(pdf.multi_cell(width, line, text, dry_run=True, output="LINES"))


def _wrapped(
    pdf: Any, x: float, y: float, text: str, width: float, line: float, lines: int
) -> None:
    pdf.set_xy(x, y)
    if lines == 1:
        pdf.cell(width, line, text, align="L")
    else:
        pdf.multi_cell(width, line, text, align="L")
