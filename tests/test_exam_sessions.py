"""Exam sessions as data: the Poitiers 2020 window, its 93 specialties, the demo session."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from kiosk.clock import Clock, parse_instant
from kiosk.exam_sessions import (
    Contact,
    SessionError,
    WindowState,
    load_session,
    national_specialties,
    shipped_sessions,
)


def at(text: str):
    return parse_instant(text)  # Europe/Paris when no offset is written


def test_the_poitiers_session_offers_exactly_93_specialties(session):
    assert session.year == 2020
    assert len(session.specialties) == 93
    assert len({s.code for s in session.specialties}) == 93
    assert all(s.offered_in(2020) for s in session.specialties)
    left_out = [s for s in national_specialties() if s not in session.specialties]
    assert all(not s.offered_in(2020) for s in left_out)


def test_the_poitiers_session_reads_its_data(session):
    assert session.id == "bacpro-poitiers-2020"
    assert session.academie == "académie de Poitiers"
    assert session.academie_heading == "Académie de Poitiers"
    assert session.academie_place == "Poitiers"
    assert str(session.zone) == "Europe/Paris"
    assert session.reference_date == date(2020, 6, 15)
    first = session.specialties[0]
    assert session.specialty(first.code) is first
    assert session.specialty("pas un code") is None


@pytest.mark.parametrize(
    "local, state",
    [
        ("2019-11-04T08:59:59", WindowState.NOT_YET_OPEN),
        ("2019-11-04T09:00:00", WindowState.OPEN),
        ("2019-11-27T18:59:59", WindowState.OPEN),
        ("2019-11-27T19:00:00", WindowState.CLOSED),
        ("2019-11-27T18:30:00+00:00", WindowState.CLOSED),  # 19:30 in Paris
        ("2020-06-15T12:00:00", WindowState.CLOSED),
    ],
)
def test_the_window_is_open_from_4_nov_9h_to_27_nov_19h_paris(session, local, state):
    assert session.window_state(at(local)) is state


def test_window_boundaries_are_instants_in_paris(session):
    assert session.opens == at("2019-11-04T08:00:00+00:00")
    assert session.closes == at("2019-11-27T18:00:00+00:00")
    assert session.local(session.closes).hour == 19


@pytest.mark.parametrize(
    "now",
    [
        "2019-11-10T10:00:00",
        "2024-03-31T02:30:00+00:00",
        "2024-10-27T08:59:59",
        "2031-12-31T23:59:59",
        "2025-06-01T09:00:00",
    ],
)
def test_the_demo_session_is_open_whatever_the_date(now):
    clock = Clock(parse_instant(now), frozen=True)
    demo = load_session("demo", clock)
    assert demo.window_state(clock.now()) is WindowState.OPEN
    assert demo.closes - clock.now() > timedelta(days=29)
    assert clock.now() - demo.opens > timedelta(days=29)
    assert demo.specialties


def test_shipped_sessions():
    assert {"bacpro-poitiers-2020", "demo"} <= set(shipped_sessions())


def test_an_unknown_session_name_is_a_session_error(clock):
    with pytest.raises(
        SessionError, match="bacpro-poitiers-2020"
    ):  # the message lists the shipped ones
        load_session("bacpro-lille-2020", clock)


SESSION_FILE = """
id = "essai"
exam = "Baccalauréat professionnel"
title = "Session d'essai"
academie = "académie de Poitiers"
year = 2021
opens = "2020-11-02T09:00:00"
closes = "2020-11-25T19:00:00+01:00"
reference = "2021-06-15T00:00:00"
paper_deadline = "2020-12-11T00:00:00"

[contact]
name = "Rectorat"
bureau = "DEC"
address = ["1 rue de l'Exemple", "86000 Poitiers"]
email = "dec@exemple.fr"
"""


def test_a_session_file_by_path(tmp_path, clock):
    path = tmp_path / "essai.toml"
    path.write_text(SESSION_FILE, encoding="utf-8")
    loaded = load_session(str(path), clock)
    assert loaded.id == "essai"
    assert loaded.year == 2021
    assert loaded.contact.phone == ""
    assert loaded.window_state(at("2020-11-02T08:59:59")) is WindowState.NOT_YET_OPEN
    assert loaded.window_state(at("2020-11-25T18:59:59")) is WindowState.OPEN
    assert loaded.window_state(at("2020-11-25T19:00:00")) is WindowState.CLOSED
    assert all(s.offered_in(2021) for s in loaded.specialties)


@pytest.mark.parametrize(
    "text",
    [
        SESSION_FILE.replace('opens = "2020-11-02T09:00:00"\n', ""),
        SESSION_FILE.replace('exam = "Baccalauréat professionnel"\n', ""),
        SESSION_FILE.replace("year = 2021", 'year = "vingt"'),
        SESSION_FILE.replace('opens = "2020-11-02T09:00:00"', 'opens = "le 2 novembre"'),
        "exam = \n",
    ],
)
def test_a_broken_session_file_is_a_session_error(tmp_path, clock, text):
    path = tmp_path / "casse.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SessionError, match="casse.toml"):
        load_session(str(path), clock)


def test_a_missing_session_file_is_a_session_error(tmp_path, clock):
    with pytest.raises(SessionError):
        load_session(str(tmp_path / "absente.toml"), clock)


# -- facts only from the session's data ------------------------------------------------------


@pytest.mark.parametrize("name", ["bacpro-poitiers-2020", "demo"])
def test_the_shipped_sessions_hold_only_what_the_note_and_the_brief_give(name, clock):
    # Neither the note nor the exam office's brief gives a date for posting the paper
    # file, an e-mail address or a telephone number: none is made up.
    loaded = load_session(name, clock)
    assert loaded.paper_deadline is None
    assert loaded.contact == Contact(
        name="Rectorat de l'académie de Poitiers",
        bureau="Bureau des examens professionnels (DEC)",
        address=("22 rue Guillaume VII le Troubadour", "86022 Poitiers"),
    )
    assert loaded.contact.reach_lines() == ()
    assert loaded.academie == "académie de Poitiers"


def test_a_session_gives_each_fact_it_has(tmp_path, clock):
    path = tmp_path / "essai.toml"
    path.write_text(SESSION_FILE + 'phone = "05 00 00 00 00"\n', encoding="utf-8")
    loaded = load_session(str(path), clock)
    assert loaded.paper_deadline == date(2020, 12, 11)
    assert loaded.contact.postal_lines() == (
        "Rectorat",
        "DEC",
        "1 rue de l'Exemple",
        "86000 Poitiers",
    )
    assert loaded.contact.reach_lines() == ("E-mail : dec@exemple.fr", "Téléphone : 05 00 00 00 00")
    assert (
        loaded.contact.signature()
        == "Rectorat\nDEC\nE-mail : dec@exemple.fr\nTéléphone : 05 00 00 00 00"
    )


@pytest.mark.parametrize(
    "left_out",
    ['paper_deadline = "2020-12-11T00:00:00"\n', 'bureau = "DEC"\n', 'email = "dec@exemple.fr"\n'],
)
def test_a_fact_the_session_does_not_give_is_empty(tmp_path, clock, left_out):
    path = tmp_path / "essai.toml"
    path.write_text(SESSION_FILE.replace(left_out, ""), encoding="utf-8")
    loaded = load_session(str(path), clock)
    given = (loaded.paper_deadline, loaded.contact.bureau, loaded.contact.email)
    assert sum(not fact for fact in given) == 1
    assert "" not in loaded.contact.postal_lines()
    assert all(line.split(": ", 1)[-1] for line in loaded.contact.reach_lines())


def test_a_session_without_an_address_has_only_the_rectorat_to_post_to(tmp_path, clock):
    path = tmp_path / "essai.toml"
    path.write_text(
        SESSION_FILE.replace('address = ["1 rue de l\'Exemple", "86000 Poitiers"]\n', ""),
        encoding="utf-8",
    )
    loaded = load_session(str(path), clock)
    assert loaded.contact.postal_lines() == ("Rectorat", "DEC")


@pytest.mark.parametrize(
    "academie, heading, place",
    [
        ("académie de Poitiers", "Académie de Poitiers", "Poitiers"),
        ("académie d'Orléans-Tours", "Académie d'Orléans-Tours", "Orléans-Tours"),
        ("académie d’Aix-Marseille", "Académie d’Aix-Marseille", "Aix-Marseille"),
        ("académie de la Guadeloupe", "Académie de la Guadeloupe", "Guadeloupe"),
    ],
)
def test_the_academie_is_named_in_full(tmp_path, clock, academie, heading, place):
    path = tmp_path / "essai.toml"
    path.write_text(
        SESSION_FILE.replace('academie = "académie de Poitiers"', f'academie = "{academie}"'),
        encoding="utf-8",
    )
    loaded = load_session(str(path), clock)
    assert (loaded.academie, loaded.academie_heading, loaded.academie_place) == (
        academie,
        heading,
        place,
    )


@pytest.mark.parametrize(
    "text",
    [
        SESSION_FILE.replace('name = "Rectorat"\n', ""),
        SESSION_FILE.replace('academie = "académie de Poitiers"', 'academie = ""'),
        SESSION_FILE.replace('email = "dec@exemple.fr"', "email = 42"),
        SESSION_FILE.replace('["1 rue de l\'Exemple", "86000 Poitiers"]', '"1 rue de l\'Exemple"'),
    ],
)
def test_a_session_without_its_rectorat_or_with_odd_contact_data_is_refused(tmp_path, clock, text):
    path = tmp_path / "casse.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SessionError, match="casse.toml"):
        load_session(str(path), clock)
