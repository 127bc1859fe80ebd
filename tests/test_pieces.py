"""The pièces justificatives: one test per rule of assets/pieces.toml, and the rules file itself."""

from __future__ import annotations

from datetime import date

import pytest

from kiosk.i18n import french
from kiosk.pieces import PieceRule, RuleError, load_rules, required_pieces
from kiosk.registration_form import check
from tests.factories import REFERENCE, born, valid_values

RULE_IDS = [
    "confirmation",
    "recensement",
    "jdc",
    "distance_enrolment",
    "distance_attendance",
    "work_experience",
    "pfmp",
    "kept_marks",
    "exemption_diploma",
    "accommodations",
    "mobility",
]


def answers(session, **overrides):
    """The checked answers of a valid form changed by ``overrides``; the form must accept them."""
    checked = check(valid_values(session, **overrides), session)
    assert checked.ok, checked.problems
    return checked.answers


def pieces(session, **overrides):
    return required_pieces(answers(session, **overrides), session)


def asked(session, piece, **overrides) -> bool:
    return piece in pieces(session, **overrides)


# An adult (30 on the reference date) so that age rules stay out of the way unless a test says so.
ADULT = born(REFERENCE, 30)


def test_the_rules_file_holds_the_pieces_of_the_brief_in_order():
    assert [rule.id for rule in load_rules()] == RULE_IDS


def test_confirmation_is_always_asked(session):
    assert asked(session, "confirmation")
    assert asked(session, "confirmation", nationality="autre", birth_date=ADULT)
    assert asked(
        session, "confirmation", status="distance", distance_school="CNED", birth_date=ADULT
    )
    assert required_pieces({}, session) == ["confirmation"]


def test_recensement_for_french_candidates_under_18(session):
    day_before_18 = born(date(2020, 6, 16), 18)  # 17 on the reference date
    assert asked(session, "recensement", birth_date=day_before_18, jdc_situation="recense")
    assert asked(session, "recensement", birth_date=born(REFERENCE, 16), jdc_situation="en_attente")
    # On the 18th birthday: no longer.
    assert not asked(session, "recensement", birth_date=born(REFERENCE, 18))
    assert not asked(session, "recensement", birth_date=born(REFERENCE, 30))
    # Not French: never.
    for nationality in ("ue", "autre"):
        assert not asked(session, "recensement", birth_date=day_before_18, nationality=nationality)
    # No age known: not asked.
    assert "recensement" not in required_pieces({"nationality": "francaise"}, session)


@pytest.mark.parametrize(
    "birth, expected",
    [
        (born(date(2020, 6, 16), 18), False),  # 17, the day before the 18th birthday
        (born(REFERENCE, 18), True),  # 18, on the birthday
        (born(REFERENCE, 24), True),  # 24
        (born(date(2020, 6, 16), 25), True),  # 24, the day before the 25th birthday
        (born(REFERENCE, 25), False),  # 25, on the birthday
        (born(REFERENCE, 40), False),
    ],
)
def test_jdc_for_french_candidates_aged_18_to_24(session, birth, expected):
    assert asked(session, "jdc", birth_date=birth) is expected


@pytest.mark.parametrize("nationality", ["ue", "autre"])
@pytest.mark.parametrize("years", [16, 17, 18, 20, 24, 30])
def test_other_nationalities_get_neither_recensement_nor_jdc(session, nationality, years):
    found = pieces(session, nationality=nationality, birth_date=born(REFERENCE, years))
    assert "recensement" not in found and "jdc" not in found


def test_distance_enrolment_for_distance_candidates(session):
    distance = {"status": "distance", "distance_school": "CNED", "birth_date": ADULT}
    assert asked(session, "distance_enrolment", **distance)
    assert not asked(session, "distance_enrolment", birth_date=ADULT)
    assert not asked(session, "distance_enrolment", status="formation_continue", birth_date=ADULT)


def test_distance_attendance_for_distance_candidates(session):
    distance = {"status": "distance", "distance_school": "CNED", "birth_date": ADULT}
    assert asked(session, "distance_attendance", **distance)
    assert not asked(session, "distance_attendance", birth_date=ADULT)
    assert not asked(session, "distance_attendance", status="formation_continue", birth_date=ADULT)


def test_work_experience_for_individual_candidates_without_training(session):
    assert asked(session, "work_experience", no_training=True, birth_date=ADULT)
    assert not asked(session, "work_experience", no_training=False, birth_date=ADULT)
    # The flag alone is not enough: the status must be individuel.
    base = answers(session, no_training=True, birth_date=ADULT)
    for status in ("distance", "formation_continue"):
        assert "work_experience" not in required_pieces(dict(base, status=status), session)


@pytest.mark.parametrize("status", ["distance", "formation_continue"])
def test_pfmp_for_distance_and_formation_continue_candidates_who_need_them(session, status):
    form = {"status": status, "distance_school": "CNED", "birth_date": ADULT}
    assert asked(session, "pfmp", pfmp_required=True, **form)
    assert not asked(session, "pfmp", pfmp_required=False, **form)
    base = answers(session, pfmp_required=True, **form)
    assert "pfmp" not in required_pieces(dict(base, status="individuel"), session)


def test_kept_marks_when_marks_are_kept(session):
    kept = {"kept_marks_session": "2018", "kept_marks_units": "U11"}
    assert asked(session, "kept_marks", kept_marks=True, **kept)
    assert not asked(session, "kept_marks", kept_marks=False, **kept)


def test_exemption_diploma_when_a_dispense_is_claimed(session):
    assert asked(session, "exemption_diploma", unit_exemption=True, exemption_diploma="CAP Cuisine")
    assert not asked(
        session, "exemption_diploma", unit_exemption=False, exemption_diploma="CAP Cuisine"
    )


def test_accommodations_when_requested(session):
    assert asked(session, "accommodations", accommodations=True, accommodations_procedure=True)
    assert not asked(session, "accommodations", accommodations=False)


def test_mobility_when_the_epreuve_facultative_is_chosen(session):
    assert asked(session, "mobility", optional_mobility=True)
    assert not asked(session, "mobility", optional_mobility=False)


def test_a_flag_asks_only_when_it_is_true_itself():
    rule = PieceRule(id="x", flags=("kept_marks",))
    assert rule.holds({"kept_marks": True}, None)
    for value in (False, None, "True", 1, "oui"):
        assert not rule.holds({"kept_marks": value}, None)


def test_the_list_follows_the_order_of_the_rules(session, tmp_path):
    everything = {
        "status": "distance",
        "distance_school": "CNED",
        "pfmp_required": True,
        "birth_date": born(REFERENCE, 20),
        "kept_marks": True,
        "kept_marks_session": "2018",
        "kept_marks_units": "U11",
        "unit_exemption": True,
        "exemption_diploma": "CAP",
        "accommodations": True,
        "accommodations_procedure": True,
        "optional_mobility": True,
    }
    found = pieces(session, **everything)
    assert found == [
        "confirmation",
        "jdc",
        "distance_enrolment",
        "distance_attendance",
        "pfmp",
        "kept_marks",
        "exemption_diploma",
        "accommodations",
        "mobility",
    ]
    reversed_file = tmp_path / "reversed.toml"
    reversed_file.write_text(
        "\n".join(
            f'[[piece]]\nid = "{piece}"\n'
            for piece in ("mobility", "accommodations", "confirmation")
        ),
        encoding="utf-8",
    )
    reversed_rules = load_rules(reversed_file)
    assert required_pieces(answers(session, **everything), session, reversed_rules) == [
        "mobility",
        "accommodations",
        "confirmation",
    ]


def test_a_rules_file_with_an_unknown_condition_is_refused(tmp_path):
    path = tmp_path / "pieces.toml"
    path.write_text(
        '[[piece]]\nid = "confirmation"\n\n[[piece]]\nid = "jdc"\nage_over = 17\n', encoding="utf-8"
    )
    with pytest.raises(RuleError, match="age_over"):
        load_rules(path)


def test_every_piece_has_a_title_and_a_why_in_french():
    for rule in load_rules():
        for part in ("title", "why"):
            key = f"pieces.{rule.id}.{part}"
            assert french.has(key), key
            assert french(key).strip(), key
