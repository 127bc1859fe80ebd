"""« Mes documents »: the confirmation PDF, read back with pypdf (real fpdf2, no mocks)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import unicodedata
import uuid
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from kiosk import formatting
from kiosk.assets import asset
from kiosk.clock import parse_instant
from kiosk.delivery import pdf as documents
from kiosk.exam_sessions import Contact
from kiosk.i18n import french
from kiosk.pieces import load_rules, required_pieces
from kiosk.registration_form import check, summary
from kiosk.registrations import RegistrationService
from kiosk.store.models import Registration
from tests.factories import valid_values

ROOT = Path(__file__).resolve().parents[1]
SAVED_AT = parse_instant("2019-11-12T14:35:00")
NOW = parse_instant("2019-11-12T14:40:00")
EMAIL = "jean.dupont@exemple.fr"
A4_WIDTH_PT = 595.28
MARGIN_PT = 15 / 25.4 * 72

# A distance candidate born abroad who ticks every option: every field of the form applies.
MANY_OPTIONS = dict(
    usage_name="Martin-Dupont de la Fontaine",
    birth_country="Maroc",
    father_name="Ahmed Dupont",
    mother_name="Fatima Dupont",
    address_line2=(
        "Résidence Les Tilleuls, bâtiment B, escalier 4, appartement 112,"
        " au fond de la cour à gauche"
    ),
    status="distance",
    distance_school=(
        "CNED — Centre national d'enseignement à distance, institut de Poitiers-Futuroscope"
    ),
    pfmp_required=True,
    optional_language=True,
    optional_language_name="espagnol",
    optional_mobility=True,
    kept_marks=True,
    kept_marks_session="2018",
    kept_marks_units="U11, U12, U31",
    unit_exemption=True,
    exemption_diploma="CAP Cuisine",
    accommodations=True,
    accommodations_procedure=True,
)
# Between them, these three candidates are asked every pièce of the rules.
CANDIDATES = {
    "many options": MANY_OPTIONS,
    "no training": dict(no_training=True),
    "minor": dict(birth_date="05/03/2004", optional_mobility=True),
}


def answers_of(session, **overrides) -> dict:
    checked = check(valid_values(session, **overrides), session)
    assert checked.ok, checked.problems
    return checked.answers


def registration(answers: dict, *, version: int = 3, number: str | None = None) -> Registration:
    """A saved registration as the store returns it; no database needed to print it."""
    return Registration(
        id=uuid.UUID("3f1c2b7e-9a45-4d0e-8c61-5b2f0e7d9a13"),
        version=version,
        answers=answers,
        status="registered",
        saved_at=SAVED_AT,
        number=number,
        created_at=SAVED_AT,
        updated_at=SAVED_AT,
    )


@pytest.fixture
def many(session) -> Registration:
    return registration(answers_of(session, **MANY_OPTIONS))


def named(session, family_name: str, given_names: str = "Jean") -> Registration:
    # Printed as stored: the form's checks (length, control characters) are not the printer's.
    answers = answers_of(session)
    answers.update(family_name=family_name, given_names=given_names)
    return registration(answers)


class Read:
    """What pypdf reads back from a rendered PDF."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reader = PdfReader(io.BytesIO(data))
        self.pages = []  # per page: [(text, x, y, font name, size)] in drawing order
        for page in self.reader.pages:
            chunks = []

            def visit(text, cm, tm, font, size, chunks=chunks):
                if text.strip():
                    name = str(font.get("/BaseFont", "")) if font else ""
                    chunks.append(
                        (text.strip(), tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5], name, size)
                    )

            page.extract_text(visitor_text=visit)
            self.pages.append(chunks)

    def text(self, page: int | None = None) -> str:
        """The text in drawing order, one space between lines, in NFC: wrapped texts read whole."""
        pages = self.pages if page is None else [self.pages[page]]
        joined = " ".join(chunk[0] for chunks in pages for chunk in chunks)
        return unicodedata.normalize("NFC", " ".join(joined.split()))

    def fonts(self) -> set[str]:
        return {chunk[3] for chunks in self.pages for chunk in chunks}


def render(reg: Registration, session, **kw) -> Read:
    return Read(
        documents.render_confirmation(
            reg, kw.pop("email", EMAIL), session, kw.pop("now", NOW), **kw
        )
    )


def flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


# -- what the confirmation says -----------------------------------------------------------


def test_every_label_and_answer_of_the_form_is_printed(session, many):
    read = render(many, session)
    text = read.text()
    sections = summary(many.answers, session, french)
    assert (
        sum(len(rows) for _, rows in sections) >= 30
    )  # nearly every field applies to this candidate
    for heading, rows in sections:
        assert flat(heading) in text
        for label, answer in rows:
            # The label, then its answer: wrapped lines read back whole, in drawing order.
            assert f"{flat(label)} {flat(answer)}" in text, label


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_every_piece_is_listed_after_the_confirmation(session, candidate):
    answers = answers_of(session, **CANDIDATES[candidate])
    read = render(registration(answers), session)
    pieces = required_pieces(answers, session)
    assert len(pieces) >= 3
    confirmation = " ".join(read.text(i) for i in range(len(read.pages) - 1))
    last_page = read.text(len(read.pages) - 1)
    assert "Liste des pièces justificatives" in last_page
    assert "Liste des pièces justificatives" not in confirmation
    for piece in pieces:
        assert flat(french(f"pieces.{piece}.title")) in last_page
        assert flat(french(f"pieces.{piece}.why")) in last_page


def test_every_rule_of_pieces_toml_is_covered_by_the_candidates(session):
    asked = {
        p for c in CANDIDATES.values() for p in required_pieces(answers_of(session, **c), session)
    }
    assert asked == {rule.id for rule in load_rules()}


def test_header_reference_version_saved_at_email_and_instructions(session, many):
    read = render(many, session)
    text, page1 = read.text(), read.text(0)
    for expected in (
        "Académie de Poitiers",
        session.title,
        "Confirmation d'inscription",
        many.reference,
        "Version 3",
        formatting.instant(SAVED_AT, session.zone),
        EMAIL,
    ):
        assert expected in page1, expected
    contact = session.contact
    for expected in (contact.name, contact.bureau, *contact.address):
        assert expected in text, expected
    assert "en rouge" in text
    assert "Date et signature du candidat" in text
    assert "N° rectorat" not in text


# -- facts only from the session's data -----------------------------------------------------

FULL_CONTACT = Contact(
    name="Rectorat de l'académie d'Orléans-Tours",
    bureau="Division des examens et concours",
    address=("21 rue Saint-Étienne", "45043 Orléans"),
    email="examens@exemple.fr",
    phone="02 00 00 00 00",
)
DEADLINE = date(2020, 12, 11)


def full_session(session):
    return replace(
        session,
        academie="académie d'Orléans-Tours",
        paper_deadline=DEADLINE,
        contact=FULL_CONTACT,
    )


def test_the_shipped_2020_session_prints_no_date_e_mail_or_telephone_it_does_not_give(
    session, many
):
    text = render(many, session).text()
    assert "Académie de Poitiers" in text
    assert "Rectorat de l'académie de Poitiers" in text
    assert "22 rue Guillaume VII le Troubadour" in text and "86022 Poitiers" in text
    # (The candidate's own telephone is an answer of the form, « Téléphone 06… »: not a fact of
    # the session, and printed without a colon.)
    for absent in (
        "avant le",
        "Envoi au rectorat avant",
        "E-mail :",
        "Téléphone :",
        "@ac-poitiers",
    ):
        assert absent not in text, absent
    assert "décembre 2019" not in text
    # The sentences that would have named a date still say what to do.
    assert flat(french("document.step_4")) in text
    assert flat(french("document.pieces_intro")) in text


def test_a_session_that_gives_every_fact_prints_them_all(session, many):
    text = render(many, full_session(session)).text()
    assert "Académie d'Orléans-Tours" in text
    day = formatting.day(DEADLINE)
    assert day == "vendredi 11 décembre 2020"
    assert flat(french("document.step_4_by", deadline=day)) in text
    assert flat(french("document.pieces_deadline", deadline=day)) in text
    for line in FULL_CONTACT.postal_lines():
        assert line in text, line
    assert "E-mail : examens@exemple.fr" in text
    assert "Téléphone : 02 00 00 00 00" in text


@pytest.mark.parametrize(
    "left_out, gone",
    [
        (dict(paper_deadline=None), ["avant le", "décembre 2020"]),
        (dict(contact=replace(FULL_CONTACT, bureau="")), ["Division des examens"]),
        (dict(contact=replace(FULL_CONTACT, address=())), ["Saint-Étienne", "45043"]),
        (dict(contact=replace(FULL_CONTACT, email="")), ["E-mail :", "examens@exemple.fr"]),
        (dict(contact=replace(FULL_CONTACT, phone="")), ["Téléphone :", "02 00 00 00 00"]),
    ],
    ids=["deadline", "bureau", "address", "email", "phone"],
)
def test_a_fact_the_session_lacks_is_left_out_and_the_others_stay(session, many, left_out, gone):
    full = full_session(session)
    text = render(many, replace(full, **left_out)).text()
    for absent in gone:
        assert absent not in text, absent
    # No label is left hanging without its value.
    assert not re.search(r"(E-mail|Téléphone) :\s*(?:$|[A-Z])", text)
    # Every other fact is still there.
    kept = full.contact if "contact" not in left_out else left_out["contact"]
    for line in (*kept.postal_lines(), *kept.reach_lines()):
        assert flat(line) in text, line
    if "paper_deadline" not in left_out:
        assert f"avant le {formatting.day(DEADLINE)}" in text


# -- what the candidate declared on the Modalités tab ----------------------------------------


def test_the_modalites_declarations_ticked_are_printed_in_their_own_words(session, many):
    read = render(many, session)
    page1 = read.text(0)
    assert flat(french("form.tabs.modalites")) in page1
    for name in ("accept_rules", "not_school_enrolled"):
        assert f"☒ {flat(french(f'form.{name}.label'))}" in page1, name
    # The rules accepted are there too, before the answers of the form.
    for line in french("form.rules.text").splitlines():
        if line.strip():
            assert flat(line) in page1
    assert page1.index("J'ai lu les modalités") < page1.index(
        flat(french("form.tabs.identification"))
    )


def test_a_declaration_not_ticked_is_not_printed_as_ticked(session):
    answers = answers_of(session)
    answers["not_school_enrolled"] = False
    text = render(registration(answers), session).text()
    assert f"☒ {flat(french('form.accept_rules.label'))}" in text
    assert flat(french("form.not_school_enrolled.label")) not in text


def test_the_rectorat_number_is_printed_once_it_has_one(session):
    reg = registration(answers_of(session), number="20-BCP-0012345")
    text = render(reg, session).text(0)
    assert "N° rectorat 20-BCP-0012345" in text


def test_page_numbers_on_every_page(session, many):
    read = render(many, session)
    count = len(read.pages)
    assert count >= 2
    for index in range(count):
        assert f"Page {index + 1}/{count}" in read.text(index)


def test_metadata(session, many):
    info = render(many, session).reader.metadata
    assert info.title == f"Confirmation d'inscription — {session.title}"
    assert info.author == session.contact.name
    assert many.reference in info.subject
    assert info.creator == "Borne d'inscription"
    assert info.creation_date == NOW


def test_same_inputs_give_the_same_bytes(session, many):
    first = documents.render_confirmation(many, EMAIL, session, NOW)
    again = documents.render_confirmation(many, EMAIL, session, NOW)
    assert first == again
    assert first != documents.render_confirmation(
        many, EMAIL, session, parse_instant("2019-11-12T15:00:00")
    )


def test_reused_fonts_give_the_bytes_of_a_plain_add_font(session, monkeypatch):
    # render_confirmation copies fpdf2's parsed fonts between documents: nothing must show.
    reg = named(session, "王小明 Dupont")
    reused = documents.render_confirmation(reg, EMAIL, session, NOW)
    monkeypatch.setattr(documents, "REUSE_PARSED_FONTS", False)
    assert documents.render_confirmation(reg, EMAIL, session, NOW) == reused


def test_a_registration_saved_in_the_store_prints(kiosk_store, clock, session, accounts, signed_up):
    account, code = signed_up
    account = accounts.activate(account.email, code)
    saved = RegistrationService(kiosk_store, clock, session).save(account, valid_values(session))
    saved = kiosk_store.Registration.get_by_id(saved.id)
    text = render(saved, session, email=account.email, now=clock.now()).text()
    assert saved.reference in text
    assert "Version 1" in text
    assert formatting.instant(clock.now(), session.zone) in text
    assert "Dupont" in text and account.email in text


# -- the barcode --------------------------------------------------------------------------

# Code 39: 9 elements per character (bar, space, …, bar), « w » wide and « n » narrow.
CODE39 = {
    "0": "nnnwwnwnn",
    "1": "wnnwnnnnw",
    "2": "nnwwnnnnw",
    "3": "wnwwnnnnn",
    "4": "nnnwwnnnw",
    "5": "wnnwwnnnn",
    "6": "nnwwwnnnn",
    "7": "nnnwnnwnw",
    "8": "wnnwnnwnn",
    "9": "nnwwnnwnn",
    "A": "wnnnnwnnw",
    "B": "nnwnnwnnw",
    "C": "wnwnnwnnn",
    "D": "nnnnwwnnw",
    "E": "wnnnwwnnn",
    "F": "nnwnwwnnn",
    "G": "nnnnnwwnw",
    "H": "wnnnnwwnn",
    "I": "nnwnnwwnn",
    "J": "nnnnwwwnn",
    "K": "wnnnnnnww",
    "L": "nnwnnnnww",
    "M": "wnwnnnnwn",
    "N": "nnnnwnnww",
    "O": "wnnnwnnwn",
    "P": "nnwnwnnwn",
    "Q": "nnnnnnwww",
    "R": "wnnnnnwwn",
    "S": "nnwnnnwwn",
    "T": "nnnnwnwwn",
    "U": "wwnnnnnnw",
    "V": "nwwnnnnnw",
    "W": "wwwnnnnnn",
    "X": "nwnnwnnnw",
    "Y": "wwnnwnnnn",
    "Z": "nwwnwnnnn",
    "-": "nwnnnnwnw",
    "*": "nwnnwnwnn",
}


def filled_rectangles(read: Read, page: int) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of each rectangle filled on the page, from its content stream."""
    reader_page = read.reader.pages[page]
    operations = ContentStream(reader_page.get_contents(), read.reader).operations
    found = []
    nexts = operations[1:] + [([], b"")]
    for (operands, operator), (_, following) in zip(operations, nexts, strict=True):
        if operator == b"re" and following in (b"f", b"F", b"f*"):
            x, y, w, h = (float(v) for v in operands)
            found.append((x, y + min(h, 0), abs(w), abs(h)))
    return found


def decode_code39(bars: list[tuple[float, float, float, float]]) -> str:
    """The text a scanner reads from the bars: widths and gaps split into narrow and wide."""
    bars = sorted(bars)
    elements = []
    for (x, _, w, _), following in zip(bars, bars[1:] + [None], strict=True):
        elements.append(w)
        if following is not None:
            elements.append(following[0] - (x + w))
    narrow = min(elements)
    symbols = "".join("w" if e > 2 * narrow else "n" for e in elements)
    # Each character is 9 elements, then one narrow gap before the next.
    table = {pattern: char for char, pattern in CODE39.items()}
    return "".join(table[symbols[i : i + 9]] for i in range(0, len(symbols), 10))


def test_a_code39_barcode_of_the_reference_is_drawn_with_the_reference_under_it(session, many):
    read = render(many, session)
    rectangles = filled_rectangles(read, 0)
    height, count = Counter(round(r[3], 1) for r in rectangles).most_common(1)[0]
    bars = [r for r in rectangles if round(r[3], 1) == height]
    assert count == 5 * (
        len(many.reference) + 2
    )  # five bars per character, start and stop included
    assert decode_code39(bars) == f"*{many.reference}*"
    left, right = min(b[0] for b in bars), max(b[0] + b[2] for b in bars)
    bottom = min(b[1] for b in bars)
    assert right <= A4_WIDTH_PT - MARGIN_PT + 0.5
    under = [
        c
        for c in read.pages[0]
        if c[0] == many.reference and c[2] < bottom and left <= c[1] <= right
    ]
    assert under, "the reference is printed under the barcode"
    assert bottom - under[0][2] < 20  # just under it, not elsewhere on the page


# -- names in any script ------------------------------------------------------------------

LONG_NAME = " ".join(f"Mot{chr(65 + i % 26)}{i:03d}" for i in range(26))


def lines_stay_within_the_page(read: Read) -> None:
    """Each line starts inside the margins and, measured with its own font, ends inside them."""
    from fpdf import FPDF

    measure = FPDF(unit="pt")
    measure.add_font("regular", "", str(asset("fonts", documents.REGULAR_FONT)))
    measure.add_font("bold", "", str(asset("fonts", documents.BOLD_FONT)))
    measure.add_font("fallback", "", str(asset("fonts", documents.FALLBACK_FONT)))
    for chunks in read.pages:
        # Text drawn in several fonts on one line (fallback glyphs) may share one position.
        widths: dict[tuple[float, float], float] = defaultdict(float)
        for text, x, y, font, size in chunks:
            assert MARGIN_PT - 1 <= x <= A4_WIDTH_PT - MARGIN_PT, (text, x)
            measure.set_font(
                "fallback" if "Droid" in font else "bold" if "Bold" in font else "regular",
                size=size,
            )
            widths[(x, y)] += measure.get_string_width(text)
        for (x, y), width in widths.items():
            assert x + width <= A4_WIDTH_PT - MARGIN_PT + 1, (x, y, width)


@pytest.mark.parametrize(
    "family_name, expected",
    [
        pytest.param("王小明", "王小明", id="chinese"),
        pytest.param("山田太郎", "山田太郎", id="japanese"),
        pytest.param("Zoé 🎓", "Zoé \ufffd", id="emoji"),
        pytest.param("Zoe\u0301", "Zoé", id="combining accent"),
        pytest.param(
            "O\u2019Brien-Łukasiewicz Ærø Ğüneş", "O\u2019Brien-Łukasiewicz Ærø Ğüneş", id="latin"
        ),
        pytest.param("Дмитрий Ἀλέξανδρος", "Дмитрий Ἀλέξανδρος", id="cyrillic greek"),
    ],
)
def test_names_in_any_script_print_within_the_page(session, family_name, expected):
    read = render(named(session, family_name), session)
    assert f"Nom de naissance {expected}" in read.text(0)
    assert f"Candidat(e) : Jean {expected}" in read.text(len(read.pages) - 1)
    lines_stay_within_the_page(read)


def test_cjk_names_embed_the_fallback_font_and_latin_names_do_not(session):
    assert any(
        "DroidSansFallback" in font for font in render(named(session, "王小明"), session).fonts()
    )
    for latin in ("Dupont", "Zoé 🎓"):  # no font has 🎓: the fallback is not embedded for nothing
        assert not any("Droid" in font for font in render(named(session, latin), session).fonts())


def test_arabic_names_print_and_read_back(session):
    name = "محمد عبد الله"
    read = render(named(session, name, "Jean"), session)
    text = read.text(0)
    if documents.shaping_available():
        # Shaped with uharfbuzz: joined letters, right to left, reading back in logical order.
        assert f"Nom de naissance {name}" in text
    else:
        # Unshaped: the letters are drawn left to right, so a reader takes them backwards.
        assert name in text or name[::-1] in text
    lines_stay_within_the_page(read)


def test_a_200_character_name_wraps_and_loses_no_word(session):
    assert len(LONG_NAME) >= 200
    read = render(named(session, LONG_NAME, LONG_NAME), session)
    words = read.text().split()
    for word in LONG_NAME.split():
        assert words.count(word) >= 3, word  # nom, prénoms, and the list of pièces
    lines_stay_within_the_page(read)


def test_a_200_character_word_is_broken_but_kept(session):
    word = "Abcdefghijklmnopqrstuvwxyz" * 8
    read = render(named(session, word), session)
    assert word in read.text(0).replace(" ", "")
    lines_stay_within_the_page(read)


def test_control_characters_never_reach_the_pdf(session):
    reg = named(session, "\x1b[31mDupont\x1b[0m\u202e\u200b", "Jean\tPierre\r\nPaul\x07")
    text = render(reg, session).text(0)
    assert "Nom de naissance Dupont Nom d'usage (facultatif) — Prénom(s) Jean Pierre Paul" in text
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in text)
    assert "[31m" not in text and "[0m" not in text


@pytest.mark.parametrize(
    "raw, printed",
    [
        ("Zoe\u0301", "Zoé"),
        ("a\tb\nc\r\nd", "a b c d"),
        ("\x1b[1;31mrouge\x1b[0m", "rouge"),
        ("\x1b]0;titre\x07nom", "nom"),
        ("ab\u200d\u202ecd\x00", "abcd"),
        ("\ue000", "\ufffd"),  # private use: no font draws it
        ("\U0001f44d\U0001f3fd", "\ufffd"),  # 👍🏽: one substitute, the skin tone is dropped
        ("\U0001f393\ufe0f x", "\ufffd\ufe0f x"),  # DejaVu has the selector (zero width), not 🎓
        (None, ""),
    ],
)
def test_printable(raw, printed):
    dejavu = documents._parsed_font(documents.REGULAR_FONT, "DejaVu", "").cmap
    assert documents.printable(raw, lambda c: ord(c) in dejavu) == printed


# -- cost -----------------------------------------------------------------------------------


def test_importing_the_module_does_not_load_fpdf():
    code = (
        "import sys, kiosk.delivery.pdf;"
        " print(sorted(m for m in ('fpdf', 'fontTools', 'pypdf') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_typical_confirmation_is_small(session):
    data = documents.render_confirmation(registration(answers_of(session)), EMAIL, session, NOW)
    assert len(data) < 60_000
