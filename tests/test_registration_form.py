"""The registration form as data: which fields exist, when each applies, and what ``check``
accepts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kiosk.clock import Clock, parse_instant
from kiosk.exam_sessions import Specialty, load_session, national_specialties
from kiosk.registration_form import (
    FIELDS,
    FIELDS_BY_NAME,
    TABS,
    Checked,
    age_on,
    applies,
    blank_values,
    born_abroad,
    check,
    parse_date,
)
from tests.factories import REFERENCE, born, valid_values


def problem(session, **overrides):
    """The problems ``check`` finds in a valid form changed by ``overrides``, by field."""
    return {
        name: p.key
        for name, p in check(valid_values(session, **overrides), session).problems.items()
    }


def applicable(session, name, **overrides) -> bool:
    return applies(FIELDS_BY_NAME[name], valid_values(session, **overrides), session)


@pytest.fixture
def demo(clock):
    return load_session("demo", clock)


# -- the fields ------------------------------------------------------------------------

DOMAIN_FIELDS = {
    "modalites": {"accept_rules", "not_school_enrolled"},
    "identification": {
        "family_name",
        "usage_name",
        "given_names",
        "sex",
        "birth_date",
        "birth_town",
        "birth_country",
        "father_name",
        "mother_name",
        "nationality",
        "address_line1",
        "address_line2",
        "postal_code",
        "town",
        "country",
        "phone",
    },
    "candidature": {
        "status",
        "distance_school",
        "no_training",
        "pfmp_required",
        "specialty",
        "language",
        "eps_exempt",
        "optional_language",
        "optional_language_name",
        "optional_eps",
        "eps_activity",
        "optional_mobility",
        "kept_marks",
        "kept_marks_session",
        "kept_marks_units",
        "unit_exemption",
        "exemption_diploma",
        "accommodations",
        "accommodations_procedure",
        "jdc_situation",
    },
}


def test_every_field_of_the_domain_brief_is_in_its_tab():
    assert len(FIELDS_BY_NAME) == len(FIELDS)
    for tab, names in DOMAIN_FIELDS.items():
        assert tab in TABS
        for name in names:
            assert name in FIELDS_BY_NAME, name
            assert FIELDS_BY_NAME[name].tab == tab, name


def test_names_and_birth_data_are_the_locked_fields():
    locked = {f.name for f in FIELDS if f.locked_once_registered}
    assert locked == {"family_name", "given_names", "birth_date", "birth_town", "birth_country"}


def test_the_valid_form_is_valid(session):
    checked = check(valid_values(session), session)
    assert checked.ok, checked.problems
    assert checked.answers["birth_date"] == "2002-03-05"


def test_blank_values_carry_the_account_names_and_defaults(session):
    values = blank_values(session, "Dupont", "Jean")
    assert set(values) == set(FIELDS_BY_NAME)
    assert values["family_name"] == "Dupont" and values["given_names"] == "Jean"
    assert values["birth_country"] == "France" and values["country"] == "France"
    assert values["accept_rules"] is False


# -- when a field applies ----------------------------------------------------------------


@pytest.mark.parametrize("country", ["france", "France", "FRANCE", " France "])
def test_born_in_france_asks_no_parents_names(session, country):
    assert not born_abroad({"birth_country": country})
    for name in ("father_name", "mother_name"):
        assert not applicable(session, name, birth_country=country)
    assert "father_name" not in check(valid_values(session, birth_country=country), session).answers


def test_born_abroad_asks_the_parents_names(session):
    assert born_abroad({"birth_country": "Maroc"})
    assert not born_abroad({"birth_country": ""})
    for name in ("father_name", "mother_name"):
        assert applicable(session, name, birth_country="Maroc")
    checked = check(valid_values(session, birth_country="Maroc", father_name="Ali Benali"), session)
    assert checked.ok and checked.answers["father_name"] == "Ali Benali"


@pytest.mark.parametrize(
    "name, status",
    [("distance_school", "distance"), ("no_training", "individuel")],
)
def test_status_fields_apply_only_to_their_status(session, name, status):
    for other in ("individuel", "distance", "formation_continue"):
        assert applicable(session, name, status=other) == (other == status), other


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"status": " distance "}, "distance_school"),
        ({"nationality": "francaise\t"}, "jdc_situation"),
    ],
)
def test_applicability_reads_the_answer_as_check_keeps_it(session, overrides, field):
    # The answer is kept as « distance » / « francaise »: what depends on it is asked too.
    checked = check(valid_values(session, **overrides, **{field: ""}), session)
    assert checked.answers[next(iter(overrides))] == next(iter(overrides.values())).strip()
    assert checked.problems[field].key == "form.required"


def test_pfmp_applies_to_distance_and_formation_continue_only(session):
    assert applicable(session, "pfmp_required", status="distance")
    assert applicable(session, "pfmp_required", status="formation_continue")
    assert not applicable(session, "pfmp_required", status="individuel")


def test_distance_school_is_required_for_distance_candidates(session):
    assert problem(session, status="distance") == {"distance_school": "form.required"}
    assert problem(session, status="distance", distance_school="CNED") == {}


@pytest.mark.parametrize(
    "flag, field",
    [
        ("optional_language", "optional_language_name"),
        ("optional_eps", "eps_activity"),
        ("kept_marks", "kept_marks_session"),
        ("kept_marks", "kept_marks_units"),
        ("unit_exemption", "exemption_diploma"),
        ("accommodations", "accommodations_procedure"),
    ],
)
def test_a_detail_applies_only_when_its_flag_is_set(session, flag, field):
    assert not applicable(session, field)
    assert not applicable(session, field, **{flag: False})
    assert applicable(session, field, **{flag: True})
    assert field not in check(valid_values(session), session).answers
    assert field in check(valid_values(session, **{flag: True}), session).problems


def test_jdc_applies_only_to_french_nationality(session):
    assert applicable(session, "jdc_situation", nationality="francaise")
    for other in ("ue", "autre"):
        assert not applicable(session, "jdc_situation", nationality=other)
    assert problem(session, nationality="ue", jdc_situation="") == {}
    assert problem(session, jdc_situation="") == {"jdc_situation": "form.required"}


def test_epreuves_the_session_does_not_offer_do_not_apply(demo):
    assert "eps" not in demo.optional_tests
    values = valid_values(demo, optional_eps=True, eps_activity="")
    for name in ("optional_eps", "eps_activity"):
        assert not applies(FIELDS_BY_NAME[name], values, demo), name
    checked = check(values, demo)
    assert checked.ok, checked.problems
    assert "optional_eps" not in checked.answers and "eps_activity" not in checked.answers
    # What the demo session does offer still applies.
    assert applies(FIELDS_BY_NAME["optional_mobility"], values, demo)


def test_an_optional_language_the_session_does_not_offer_does_not_apply(session):
    without = replace(session, optional_tests=("mobilite",))
    values = valid_values(without, optional_language=True, optional_language_name="")
    for name in ("optional_language", "optional_language_name"):
        assert not applies(FIELDS_BY_NAME[name], values, without), name
    assert check(values, without).ok


def test_eps_is_offered_by_the_2020_session(session):
    assert applicable(session, "optional_eps")
    assert applicable(session, "eps_activity", optional_eps=True)


# -- required fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "family_name",
        "given_names",
        "sex",
        "birth_date",
        "birth_town",
        "birth_country",
        "nationality",
        "address_line1",
        "postal_code",
        "town",
        "country",
        "phone",
        "status",
        "specialty",
        "language",
    ],
)
@pytest.mark.parametrize("empty", ["", "   ", None])
def test_a_missing_required_field_is_reported_at_the_field(session, name, empty):
    problems = problem(session, **{name: empty})
    assert problems[name] == "form.required"


@pytest.mark.parametrize("name", ["usage_name", "address_line2"])
def test_optional_fields_may_stay_empty(session, name):
    assert problem(session, **{name: ""}) == {}


@pytest.mark.parametrize("flag", ["accept_rules", "not_school_enrolled"])
@pytest.mark.parametrize("unticked", [False, None, "True", 1])
def test_both_modalites_flags_must_be_ticked(session, flag, unticked):
    assert problem(session, **{flag: unticked}) == {flag: f"form.{flag}.required"}


def test_every_missing_field_is_reported_at_once(session):
    checked = check(blank_values(session), session)
    assert {
        "accept_rules",
        "not_school_enrolled",
        "sex",
        "birth_date",
        "phone",
        "specialty",
    } <= set(checked.problems)


# -- dates and ages --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("05/03/2002", date(2002, 3, 5)),
        ("5/3/2002", date(2002, 3, 5)),
        (" 05.03.2002 ", date(2002, 3, 5)),
        ("05-03-2002", date(2002, 3, 5)),
        ("2002-03-05", date(2002, 3, 5)),
        ("29/02/2004", date(2004, 2, 29)),
    ],
)
def test_dates_are_read_as_jj_mm_aaaa_or_iso(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "31/02/2002",
        "29/02/2003",
        "00/01/2002",
        "05/13/2002",
        "2002-02-31",
        "",
        "demain",
        "05/03/02",
    ],
)
def test_impossible_dates_are_no_dates(text):
    assert parse_date(text) is None


def test_an_impossible_birth_date_is_refused(session):
    assert problem(session, birth_date="31/02/2002") == {"birth_date": "form.date"}
    assert check(valid_values(session, birth_date="2002-03-05"), session).ok


def test_age_on_counts_whole_years_up_to_the_birthday():
    assert age_on(date(2002, 6, 15), REFERENCE) == 18
    assert age_on(date(2002, 6, 16), REFERENCE) == 17
    assert age_on(date(2004, 2, 29), date(2022, 2, 28)) == 17
    assert age_on(date(2004, 2, 29), date(2022, 3, 1)) == 18


@pytest.mark.parametrize("years", [13, 101, 0, -1])
def test_an_implausible_age_is_refused(session, years):
    assert problem(session, birth_date=born(REFERENCE, years)) == {
        "birth_date": "form.birth_date.implausible"
    }


@pytest.mark.parametrize("years", [14, 40, 100])
def test_a_plausible_age_is_accepted(session, years):
    assert problem(session, birth_date=born(REFERENCE, years), jdc_situation="jdc_effectuee") == {}


# -- address and phone -----------------------------------------------------------------


@pytest.mark.parametrize("code", ["8600", "860000", "86 000", "2A004", "abcde", "８６０００"])
@pytest.mark.parametrize("country", ["France", "FRANCE", "france"])
def test_a_french_postal_code_has_five_digits(session, code, country):
    assert problem(session, postal_code=code, country=country) == {
        "postal_code": "form.postal_code.invalid"
    }


@pytest.mark.parametrize(
    "code, country", [("1000", "Belgique"), ("SW1A 1AA", "Royaume-Uni"), ("2A004", "Italie")]
)
def test_a_foreign_postal_code_is_not_held_to_five_digits(session, code, country):
    assert problem(session, postal_code=code, country=country) == {}


@pytest.mark.parametrize(
    "phone",
    ["06 12 34 56 78", "0612345678", "+33 6 12 34 56 78", "06.12.34.56.78", "+32-2-123-45-67"],
)
def test_phone_numbers_are_accepted(session, phone):
    assert problem(session, phone=phone) == {}


@pytest.mark.parametrize(
    "phone", ["06", "12345", "téléphone", "06 12 34 56 7a", "++33612345678", "-0612345678"]
)
def test_what_is_not_a_phone_number_is_refused(session, phone):
    assert problem(session, phone=phone) == {"phone": "form.phone.invalid"}


# -- the candidature -------------------------------------------------------------------


def test_the_specialty_must_be_one_the_session_offers(session):
    assert problem(session, specialty="99999999") == {"specialty": "form.choice"}
    assert problem(session, specialty=session.specialties[-1].code) == {}


def test_specialties_outside_their_sessions_are_refused_for_2020(session):
    by_code = {s.code: s for s in national_specialties()}
    # First offered in 2021: not yet for 2020.
    assert by_code["40022308"].first_session == 2021
    assert problem(session, specialty="40022308") == {"specialty": "form.choice"}
    # Last offered in 2020: still offered for 2020.
    last_2020 = next(s for s in national_specialties() if s.last_session == 2020)
    assert problem(session, specialty=last_2020.code) == {}


def test_a_specialty_whose_last_session_is_2019_is_refused_for_2020(clock, monkeypatch):
    ended = Specialty(
        code="49999999",
        title="Spécialité rénovée",
        option="",
        first_session=2010,
        last_session=2019,
    )
    real = national_specialties()
    monkeypatch.setattr("kiosk.exam_sessions.national_specialties", lambda: (*real, ended))
    session = load_session("bacpro-poitiers-2020", clock)
    assert ended not in session.specialties
    assert problem(session, specialty=ended.code) == {"specialty": "form.choice"}


def optional(**overrides):
    return {
        "optional_language": True,
        "optional_language_name": "espagnol",
        "optional_eps": True,
        "eps_activity": "natation",
        "optional_mobility": True,
    } | overrides


@pytest.mark.parametrize("left_out", ["optional_language", "optional_eps", "optional_mobility"])
def test_two_epreuves_facultatives_are_accepted(session, left_out):
    assert problem(session, **optional(**{left_out: False})) == {}


def test_three_epreuves_facultatives_are_refused(session):
    problems = problem(session, **optional())
    assert problems == {
        "optional_language": "form.optional.too_many",
        "optional_eps": "form.optional.too_many",
        "optional_mobility": "form.optional.too_many",
    }


def test_facultative_eps_is_refused_when_exempted_from_compulsory_eps(session):
    assert problem(session, optional_eps=True, eps_activity="natation", eps_exempt=True) == {
        "optional_eps": "form.optional_eps.exempt"
    }
    assert problem(session, optional_eps=True, eps_activity="natation") == {}
    assert problem(session, eps_exempt=True) == {}


def test_the_optional_language_must_differ_from_the_compulsory_one(session):
    same = problem(
        session, language="anglais", optional_language=True, optional_language_name="anglais"
    )
    assert same == {"optional_language_name": "form.optional_language_name.same"}
    assert (
        problem(
            session, language="anglais", optional_language=True, optional_language_name="allemand"
        )
        == {}
    )


@pytest.mark.parametrize(
    "year, ok", [("2015", True), ("2019", True), ("2014", False), ("2020", False), ("2021", False)]
)
def test_kept_marks_are_within_five_years_before_the_session(session, year, ok):
    problems = problem(
        session, kept_marks=True, kept_marks_session=year, kept_marks_units="U11, U12"
    )
    assert problems == ({} if ok else {"kept_marks_session": "form.kept_marks_session.range"})


@pytest.mark.parametrize("year", ["²⁰¹⁷", "²", "２０１７", "١٧", "20a7", "-201"])
def test_a_kept_marks_session_that_is_no_plain_year_is_refused(session, year):
    problems = problem(session, kept_marks=True, kept_marks_session=year, kept_marks_units="U11")
    assert problems == {"kept_marks_session": "form.kept_marks_session.range"}


def test_no_training_is_refused_for_a_minor(session):
    # 17 on the reference date: the 18th birthday is the day after.
    minor = born(date(2020, 6, 16), 18)
    assert problem(session, birth_date=minor, no_training=True, jdc_situation="recense") == {
        "no_training": "form.no_training.minor"
    }
    assert problem(session, birth_date=minor, no_training=False, jdc_situation="recense") == {}


def test_no_training_is_accepted_on_the_18th_birthday(session):
    assert problem(session, birth_date=born(REFERENCE, 18), no_training=True) == {}


@pytest.mark.parametrize("name", ["family_name", "birth_town", "address_line1", "distance_school"])
@pytest.mark.parametrize(
    "bad", ["\x00", "\x07", "\x1b[31m", "\u200b", "\u202e", "\ue000", "\ufffe"]
)
def test_control_characters_are_refused(session, name, bad):
    values = valid_values(session, status="distance", distance_school="CNED")
    values[name] = f"Du{bad}pont"
    assert {n: p.key for n, p in check(values, session).problems.items()} == {name: "form.control"}


def test_text_is_kept_with_spaces_collapsed_and_in_nfc(session):
    checked = check(
        valid_values(session, family_name="  Le   Bihan ", birth_town="Saint-E\u0301tienne"),
        session,
    )
    assert checked.answers["family_name"] == "Le Bihan"
    assert checked.answers["birth_town"] == "Saint-\u00c9tienne"


def test_overlong_text_is_refused(session):
    assert problem(session, address_line1="x" * 101) == {"address_line1": "form.too_long"}
    assert problem(session, address_line1="x" * 100) == {}


# -- never raises ------------------------------------------------------------------------

_SESSION = load_session(
    "bacpro-poitiers-2020", Clock(parse_instant("2019-11-10T10:00:00"), frozen=True)
)
_VALID = valid_values(_SESSION)
_ANY = st.one_of(st.none(), st.booleans(), st.text(max_size=30))


def _field_value(name):
    digits = st.text(alphabet=st.characters(categories=["Nd", "No"]), max_size=5)
    return st.one_of(st.just(_VALID[name]), _ANY, digits)


@given(st.fixed_dictionaries({name: _field_value(name) for name in FIELDS_BY_NAME}))
@example({**_VALID, "kept_marks": True, "kept_marks_session": "²", "kept_marks_units": "U1"})
@example({**_VALID, "birth_date": "01/01/0001"})
@example({**_VALID, "birth_date": "31/12/9999", "no_training": True})
def test_check_never_raises(values):
    checked = check(values, _SESSION)
    assert isinstance(checked, Checked)
    assert set(checked.problems) <= set(FIELDS_BY_NAME)


@given(st.text())
@example("٠٥/٠٣/٢٠٠٢")
@example("2002-W10-2")
@example("\ud800")
def test_parse_date_returns_a_date_or_none(text):
    assert parse_date(text) is None or isinstance(parse_date(text), date)


# -- kept values: stored answers the candidate can no longer change --------------------------


def test_a_kept_value_that_breaks_a_rule_is_kept_as_it_is_and_is_no_problem(session):
    long_name = "Dupont" + "-Martin" * 20
    assert problem(session, family_name=long_name) == {"family_name": "form.too_long"}
    checked = check(
        valid_values(session, family_name="tapé à l'écran"),
        session,
        kept={"family_name": long_name},
    )
    assert checked.ok, checked.problems
    assert checked.answers["family_name"] == long_name


@pytest.mark.parametrize(
    "name, stored",
    [
        ("birth_date", "2002-02-30"),
        ("birth_date", "05/03/1850"),  # implausible age: a rule across fields
        ("birth_town", "Poitiers\x07"),
        ("birth_country", ""),
        ("given_names", "J" * 300),
    ],
)
def test_no_rule_of_the_form_makes_a_kept_value_a_problem(session, name, stored):
    checked = check(valid_values(session), session, kept={name: stored})
    assert checked.ok, checked.problems
    assert checked.answers[name] == stored


def test_kept_values_leave_the_other_fields_checked(session):
    checked = check(
        valid_values(session, postal_code="860"),
        session,
        kept={"family_name": "D" * 150},
    )
    assert set(checked.problems) == {"postal_code"}


def test_a_kept_birth_date_still_decides_the_rules_that_depend_on_it(session):
    # A minor without training is refused at the field the candidate can change.
    checked = check(
        valid_values(session, status="individuel", no_training=True),
        session,
        kept={"birth_date": born(REFERENCE, 16)},
    )
    assert set(checked.problems) == {"no_training"}
