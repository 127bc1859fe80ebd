"""The « Avis de changement d'adresse » PDF, read back with pypdf (real fpdf2, no mocks)."""

from __future__ import annotations

import io
import unicodedata
import uuid
from dataclasses import replace

from pypdf import PdfReader

from kiosk import formatting
from kiosk.clock import parse_instant
from kiosk.delivery import pdf as documents
from kiosk.exam_sessions import Contact
from kiosk.i18n import Messages, french
from kiosk.registration_form import check
from kiosk.registrations import ADDRESS_FIELDS
from kiosk.store.models import Registration
from tests.factories import valid_values

SAVED_AT = parse_instant("2019-11-12T14:35:00")
REPORTED_AT = parse_instant("2020-01-15T09:30:00")  # 08:30 UTC, after the close
EMAIL = "jean.dupont@exemple.fr"
OLD = dict(
    address_line1="12 rue de la Paix",
    address_line2="",
    postal_code="86000",
    town="Poitiers",
    country="France",
    phone="06 12 34 56 78",
)
NEW = dict(
    address_line1="3 avenue de la République",
    address_line2="Résidence Les Tilleuls, bâtiment B",
    postal_code="75011",
    town="Paris",
    country="France",
    phone="07 11 22 33 44",
)
FULL_CONTACT = Contact(
    name="Rectorat de l'académie d'Orléans-Tours",
    bureau="Division des examens et concours",
    address=("21 rue Saint-Étienne", "45043 Orléans"),
    email="examens@exemple.fr",
    phone="02 00 00 00 00",
)


def registration(session, number: str | None = None, **names) -> Registration:
    """A saved registration as the store returns it; names printed as stored, unchecked."""
    checked = check(valid_values(session), session)
    assert checked.ok, checked.problems
    return Registration(
        id=uuid.UUID("3f1c2b7e-9a45-4d0e-8c61-5b2f0e7d9a13"),
        version=2,
        answers={**checked.answers, **names},
        status="registered",
        saved_at=SAVED_AT,
        number=number,
        created_at=SAVED_AT,
        updated_at=SAVED_AT,
    )


def render(session, reg=None, *, old=OLD, new=NEW, messages=french) -> bytes:
    return documents.render_address_notice(
        reg or registration(session), EMAIL, old, new, session, REPORTED_AT, messages
    )


def read(data: bytes) -> tuple[str, set[str], PdfReader]:
    """The text in drawing order (one space between chunks, NFC), the fonts drawn, the reader."""
    reader = PdfReader(io.BytesIO(data))
    chunks: list[str] = []
    fonts: set[str] = set()

    def visit(text, cm, tm, font, size):
        if text.strip():
            chunks.append(text.strip())
            fonts.add(str(font.get("/BaseFont", "")) if font else "")

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    return unicodedata.normalize("NFC", " ".join(" ".join(chunks).split())), fonts, reader


def text_of(data: bytes) -> str:
    return read(data)[0]


def flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


# -- what the notice says -----------------------------------------------------------------


def test_it_is_a_one_page_pdf_with_its_metadata(session):
    data = render(session)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    _, _, reader = read(data)
    assert len(reader.pages) == 1
    info = reader.metadata
    assert info.title == f"Avis de changement d'adresse — {session.title}"
    assert info.author == session.contact.name
    assert registration(session).reference in info.subject
    assert info.creation_date == REPORTED_AT


def test_header_candidate_reference_email_and_when_it_was_reported(session):
    reg = registration(session)
    text = text_of(render(session, reg))
    for expected in (
        "Académie de Poitiers",
        session.title,
        "Avis de changement d'adresse",
        "À l'attention du bureau des examens",
        "Candidat(e) Jean Dupont",
        f"Dossier n° {reg.reference}",
        f"Adresse e-mail {EMAIL}",
        "Signalé le mercredi 15 janvier 2020 à 09:30",  # Paris time, not UTC's 08:30
        "Signature du candidat",
        "Fait à",
    ):
        assert expected in text, expected
    assert formatting.instant(REPORTED_AT, session.zone) in text
    assert "N° rectorat" not in text


def test_the_rectorat_number_is_printed_once_the_file_has_one(session):
    text = text_of(render(session, registration(session, number="20-BCP-0012345")))
    assert "N° rectorat 20-BCP-0012345" in text


def test_both_addresses_are_printed_line_by_line_without_their_empty_lines(session):
    text = text_of(render(session))
    # The old address on the left, then the new one; no line for the empty complément,
    # postal code and town on one line, the telephone labelled.
    assert (
        "Ancienne adresse 12 rue de la Paix 86000 Poitiers France Téléphone : 06 12 34 56 78"
        " Nouvelle adresse 3 avenue de la République Résidence Les Tilleuls, bâtiment B"
        " 75011 Paris France Téléphone : 07 11 22 33 44"
    ) in text
    assert "—" not in text.split("Ancienne adresse")[1].split("Le bureau des examens")[0]


def test_every_address_field_is_printed(session):
    # The notice reads the fields of ADDRESS_FIELDS by name: none may be forgotten.
    new = {
        field: f"Valeur{index}{field.replace('_', '')}"
        for index, field in enumerate(ADDRESS_FIELDS)
    }
    text = text_of(render(session, new=new))
    after = text.split("Nouvelle adresse", 1)[1]
    for value in new.values():
        assert value in after, value


def test_an_address_with_nothing_in_it_prints_a_dash_not_labels(session):
    empty = dict.fromkeys(ADDRESS_FIELDS, "")
    text = text_of(render(session, old=empty))
    assert "Ancienne adresse — Nouvelle adresse 3 avenue" in text
    assert text.count("Téléphone :") == 1


def test_the_follow_up_and_the_exam_office_of_the_shipped_session(session):
    text = text_of(render(session))
    assert flat(french("notice.follow_up_post")) in text
    assert "Adresse du bureau des examens" in text
    for line in session.contact.postal_lines():
        assert line in text, line
    # The 2020 session gives no e-mail or telephone: none is printed, nor guessed. The
    # only telephones are the candidate's own, one in each address.
    assert "E-mail :" not in text and "@ac-poitiers" not in text
    assert text.count("Téléphone :") == 2


def test_a_session_that_gives_every_fact_prints_them_all(session):
    text = text_of(render(replace(session, contact=FULL_CONTACT)))
    for line in FULL_CONTACT.postal_lines():
        assert line in text, line
    assert "E-mail : examens@exemple.fr" in text
    assert "Téléphone : 02 00 00 00 00" in text


def test_a_session_without_e_mail_or_telephone_prints_neither(session):
    lacking = replace(session, contact=replace(FULL_CONTACT, email="", phone=""))
    text = text_of(render(lacking))
    assert "examens@exemple.fr" not in text and "02 00 00 00 00" not in text
    assert "E-mail :" not in text
    assert text.count("Téléphone :") == 2  # the candidate's, not the exam office's
    assert "21 rue Saint-Étienne 45043 Orléans" in text


def test_a_session_without_postal_address_does_not_point_below(session):
    lacking = replace(session, contact=replace(FULL_CONTACT, address=()))
    text = text_of(render(lacking))
    assert flat(french("notice.follow_up")) in text
    assert "ci-dessous" not in text.split("Nouvelle adresse")[1]
    assert "Saint-Étienne" not in text and "45043" not in text


def test_english_messages(session):
    text = text_of(render(session, messages=Messages("en")))
    assert "Change of address notice" in text
    assert "Previous address 12 rue de la Paix" in text
    assert "Telephone: 07 11 22 33 44" in text
    assert "Reported on Wednesday 15 January 2020 at 09:30" in text
    assert "Avis de changement" not in text and "Ancienne adresse" not in text


def test_same_inputs_give_the_same_bytes(session):
    assert render(session) == render(session)
    assert render(session) != render(session, new={**NEW, "town": "Lyon"})


# -- names and addresses in any script, never a control character ----------------------------


def test_a_chinese_name_prints_with_the_fallback_font(session):
    reg = registration(session, family_name="王小明")
    text, fonts, _ = read(render(session, reg))
    assert "Candidat(e) Jean 王小明" in text
    assert any("DroidSansFallback" in font for font in fonts)
    # A Latin name does not embed it.
    assert not any("Droid" in font for font in read(render(session))[1])


def test_an_arabic_name_and_town_print_and_read_back(session):
    name, town = "محمد عبد الله", "الرباط"
    reg = registration(session, family_name=name)
    text = text_of(render(session, reg, new={**NEW, "town": town, "country": "Maroc"}))
    if documents.shaping_available():
        # Shaped with uharfbuzz: joined, right to left, read back in logical order.
        assert f"Candidat(e) Jean {name}" in text
        assert town in text
    else:
        # Unshaped: drawn left to right, so a reader takes the letters backwards.
        assert name in text or name[::-1] in text


def test_markup_and_control_characters_never_reach_the_pdf(session):
    reg = registration(
        session,
        family_name="[bold]x[/]\x1b[31mDupont\x1b[0m\u202e\u200b",
        given_names="Jean\tPierre\r\nPaul\x07",
    )
    new = {**NEW, "address_line1": "3 avenue\x00 de la\x1b]0;titre\x07 République\u2066"}
    text = text_of(render(session, reg, new=new))
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in text)
    assert "[31m" not in text and "[0m" not in text and "titre" not in text
    # Square brackets are no markup in a PDF: printed as typed.
    assert "Candidat(e) Jean Pierre Paul [bold]x[/]Dupont" in text
    assert "Nouvelle adresse 3 avenue de la République" in text


def test_long_addresses_wrap_and_lose_no_word(session):
    words = [f"Mot{chr(65 + i % 26)}{i:03d}" for i in range(30)]
    new = {**NEW, "address_line2": " ".join(words)}
    text = text_of(render(session, new=new))
    after = text.split("Nouvelle adresse", 1)[1].split()
    for word in words:
        assert word in after, word
