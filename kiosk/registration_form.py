"""The registration form as data: its tabs, its fields, when each applies, and its checks.

The screens build the form from ``FIELDS`` and show what ``check`` says; nothing about
which field applies or what it accepts is decided in the screens. A draft keeps the raw
values as typed (``Values``), so that nothing typed is ever lost, even when invalid;
``check`` turns them into the ``Answers`` that a saved registration keeps.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kiosk.errors import Problem
from kiosk.exam_sessions import ExamSession
from kiosk.i18n import Messages
from kiosk.text import has_control

Values = dict[str, Any]
Answers = dict[str, Any]

TABS = ("modalites", "identification", "candidature", "recapitulatif")

STATUSES = ("individuel", "distance", "formation_continue")
SEXES = ("F", "M")
NATIONALITIES = ("francaise", "ue", "autre")
LANGUAGES = (
    "anglais",
    "allemand",
    "espagnol",
    "italien",
    "portugais",
    "arabe",
    "chinois",
    "neerlandais",
    "russe",
    "turc",
    "vietnamien",
    "polonais",
    "roumain",
    "hebreu",
    "japonais",
)
JDC_SITUATIONS = ("jdc_effectuee", "recense", "exempte", "en_attente")
EPS_ACTIVITIES = (
    "course",
    "natation",
    "tennis_de_table",
    "badminton",
    "musculation",
    "danse",
    "escalade",
)
OPTIONAL_TESTS = {
    "langue_vivante": "optional_language",
    "eps": "optional_eps",
    "mobilite": "optional_mobility",
}
MAX_OPTIONAL_TESTS = 2
KEPT_MARKS_YEARS = 5
TEXT_MAX = 100
FRANCE = "france"

_PHONE = re.compile(r"^\+?[0-9][0-9 .-]{7,18}[0-9]$")
_POSTCODE_FR = re.compile(r"^[0-9]{5}$")
_YEAR = re.compile(r"^[0-9]{4}$")
_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")


def plain(text: str) -> str:
    """Lower case without accents or surrounding spaces: « France » == « france »."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def born_abroad(values: Mapping[str, Any]) -> bool:
    country = str(values.get("birth_country") or "")
    return bool(country.strip()) and plain(country) != FRANCE


def parse_date(text: str) -> date | None:
    """JJ/MM/AAAA (or with dots or dashes), or ISO AAAA-MM-JJ; ``None`` when it is no date."""
    text = str(text or "").strip()
    match = _DATE.match(text)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        return None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Field:
    """One field of the form: where it is, what it holds, and when it applies."""

    name: str
    tab: str
    kind: str  # text | date | choice | flag
    required: bool = True
    choices: tuple[str, ...] = ()
    applies: Callable[[Mapping[str, Any]], bool] = lambda values: True
    locked_once_registered: bool = False
    max_length: int = TEXT_MAX
    default: Any = None
    options: str = ""  # for choices that come from the session ("specialties", "optional_tests")


def _is(name: str, *accepted: Any) -> Callable[[Mapping[str, Any]], bool]:
    # Compared as ``check`` keeps the answer: « distance » typed with spaces is still « distance ».
    return lambda values: _clean_text(values.get(name)) in accepted


def _flag(name: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda values: values.get(name) is True


FIELDS: tuple[Field, ...] = (
    # Modalités d'inscription
    Field("accept_rules", "modalites", "flag"),
    Field("not_school_enrolled", "modalites", "flag"),
    # Identification
    Field("family_name", "identification", "text", locked_once_registered=True),
    Field("usage_name", "identification", "text", required=False),
    Field("given_names", "identification", "text", locked_once_registered=True),
    Field("sex", "identification", "choice", choices=SEXES),
    Field("birth_date", "identification", "date", locked_once_registered=True, max_length=10),
    Field("birth_town", "identification", "text", locked_once_registered=True),
    Field("birth_country", "identification", "text", locked_once_registered=True, default="France"),
    Field("father_name", "identification", "text", required=False, applies=born_abroad),
    Field("mother_name", "identification", "text", required=False, applies=born_abroad),
    Field("nationality", "identification", "choice", choices=NATIONALITIES),
    Field("address_line1", "identification", "text"),
    Field("address_line2", "identification", "text", required=False),
    Field("postal_code", "identification", "text", max_length=10),
    Field("town", "identification", "text"),
    Field("country", "identification", "text", default="France"),
    Field("phone", "identification", "text", max_length=20),
    # Informations candidature
    Field("status", "candidature", "choice", choices=STATUSES),
    Field("distance_school", "candidature", "text", applies=_is("status", "distance")),
    Field(
        "no_training", "candidature", "flag", required=False, applies=_is("status", "individuel")
    ),
    Field(
        "pfmp_required",
        "candidature",
        "flag",
        required=False,
        applies=_is("status", "distance", "formation_continue"),
    ),
    Field("specialty", "candidature", "choice", options="specialties"),
    Field("language", "candidature", "choice", choices=LANGUAGES),
    Field("eps_exempt", "candidature", "flag", required=False),
    Field("optional_language", "candidature", "flag", required=False, options="langue_vivante"),
    Field(
        "optional_language_name",
        "candidature",
        "choice",
        choices=LANGUAGES,
        options="langue_vivante",
        applies=_flag("optional_language"),
    ),
    Field("optional_eps", "candidature", "flag", required=False, options="eps"),
    Field(
        "eps_activity",
        "candidature",
        "choice",
        choices=EPS_ACTIVITIES,
        options="eps",
        applies=_flag("optional_eps"),
    ),
    Field("optional_mobility", "candidature", "flag", required=False, options="mobilite"),
    Field("kept_marks", "candidature", "flag", required=False),
    Field("kept_marks_session", "candidature", "text", applies=_flag("kept_marks"), max_length=4),
    Field("kept_marks_units", "candidature", "text", applies=_flag("kept_marks")),
    Field("unit_exemption", "candidature", "flag", required=False),
    Field("exemption_diploma", "candidature", "text", applies=_flag("unit_exemption")),
    Field("accommodations", "candidature", "flag", required=False),
    Field("accommodations_procedure", "candidature", "flag", applies=_flag("accommodations")),
    Field(
        "jdc_situation",
        "candidature",
        "choice",
        choices=JDC_SITUATIONS,
        applies=_is("nationality", "francaise"),
    ),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}
LOCKED_FIELDS = tuple(f.name for f in FIELDS if f.locked_once_registered)


def offered(field: Field, session: ExamSession) -> bool:
    """Whether the session offers this field at all (an épreuve facultative it has)."""
    return field.options in ("", "specialties") or field.options in session.optional_tests


def choices_of(field: Field, session: ExamSession) -> tuple[str, ...]:
    if field.options == "specialties":
        return tuple(s.code for s in session.specialties)
    return field.choices


def applies(field: Field, values: Mapping[str, Any], session: ExamSession) -> bool:
    return offered(field, session) and field.applies(values)


def blank_values(session: ExamSession, family_name: str = "", given_names: str = "") -> Values:
    """A new form: defaults, and the names the account was created with."""
    values: Values = {f.name: (False if f.kind == "flag" else (f.default or "")) for f in FIELDS}
    values.update(family_name=family_name, given_names=given_names)
    return values


def _clean_text(value: Any) -> str:
    return unicodedata.normalize("NFC", " ".join(str(value or "").split()))


@dataclass
class Checked:
    """The outcome of ``check``: clean answers, or problems by field name."""

    answers: Answers = field(default_factory=dict)
    problems: dict[str, Problem] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_field(f: Field, raw: Any, session: ExamSession, out: Checked) -> None:
    if f.kind == "flag":
        value = raw is True
        if f.required and not value:
            out.problems[f.name] = Problem(f"form.{f.name}.required")
        out.answers[f.name] = value
        return
    # Controls are looked for before spaces are folded: some count as white space.
    unsafe = has_control(str(raw or "").replace("\t", " "))
    text = _clean_text(raw)
    if not text:
        if f.required:
            out.problems[f.name] = Problem("form.required")
        out.answers[f.name] = ""
        return
    if len(text) > f.max_length:
        out.problems[f.name] = Problem("form.too_long", {"maximum": f.max_length})
    elif unsafe:
        out.problems[f.name] = Problem("form.control")
    elif f.kind == "choice" and text not in choices_of(f, session):
        out.problems[f.name] = Problem("form.choice")
    elif f.kind == "date":
        parsed = parse_date(text)
        if parsed is None:
            out.problems[f.name] = Problem("form.date")
        else:
            text = parsed.isoformat()
    out.answers[f.name] = text


def check(
    values: Mapping[str, Any], session: ExamSession, kept: Mapping[str, Any] | None = None
) -> Checked:
    """Every rule of the form, for the values as typed.

    ``kept`` holds the stored answers of the fields the candidate may no longer change:
    they are taken as they are stored and are never a problem, even when they break a
    rule of the form (a name longer than a field allows, a date the exam office typed
    oddly…): the candidate cannot correct them, so they must not stop a save; the exam
    office corrects them.
    """
    kept = kept or {}
    out = Checked()
    for f in FIELDS:
        if f.name in kept:
            out.answers[f.name] = kept[f.name]
        elif applies(f, values, session):
            _check_field(f, values.get(f.name), session, out)
    _check_identity(out, session)
    _check_address(out)
    _check_candidature(out, session)
    for name in kept:
        out.problems.pop(name, None)
    return out


def _check_identity(out: Checked, session: ExamSession) -> None:
    answers, problems = out.answers, out.problems
    birth = parse_date(answers.get("birth_date", ""))
    if birth is not None and "birth_date" not in problems:
        age = age_on(birth, session.reference_date)
        if age < 14 or age > 100:
            problems["birth_date"] = Problem("form.birth_date.implausible")


def _check_address(out: Checked) -> None:
    answers, problems = out.answers, out.problems
    code = answers.get("postal_code", "")
    if code and "postal_code" not in problems and plain(answers.get("country", "")) == FRANCE:
        if not _POSTCODE_FR.match(code):
            problems["postal_code"] = Problem("form.postal_code.invalid")
    phone = answers.get("phone", "")
    if phone and "phone" not in problems and not _PHONE.match(phone):
        problems["phone"] = Problem("form.phone.invalid")


def _check_candidature(out: Checked, session: ExamSession) -> None:
    answers, problems = out.answers, out.problems
    chosen = [
        name
        for test, name in OPTIONAL_TESTS.items()
        if test in session.optional_tests and answers.get(name)
    ]
    if len(chosen) > MAX_OPTIONAL_TESTS:
        for name in chosen:
            problems.setdefault(
                name, Problem("form.optional.too_many", {"maximum": MAX_OPTIONAL_TESTS})
            )
    if answers.get("optional_eps") and answers.get("eps_exempt"):
        problems.setdefault("optional_eps", Problem("form.optional_eps.exempt"))
    if (
        answers.get("optional_language")
        and answers.get("optional_language_name")
        and answers.get("optional_language_name") == answers.get("language")
    ):
        problems.setdefault("optional_language_name", Problem("form.optional_language_name.same"))
    if answers.get("kept_marks") and "kept_marks_session" not in problems:
        year = answers.get("kept_marks_session", "")
        first = session.year - KEPT_MARKS_YEARS
        # ASCII digits only: str.isdigit() also says yes to « ² » or « ２０１７ ».
        if not (_YEAR.match(year) and first <= int(year) < session.year):
            problems["kept_marks_session"] = Problem(
                "form.kept_marks_session.range", {"first": first, "last": session.year - 1}
            )
    birth = parse_date(answers.get("birth_date", ""))
    if (
        answers.get("no_training")
        and birth is not None
        and age_on(birth, session.reference_date) < 18
    ):
        problems.setdefault("no_training", Problem("form.no_training.minor"))


def problems_by_tab(problems: Mapping[str, Problem]) -> dict[str, list[str]]:
    """Which tabs hold problems, for the « Suivant » checks and the summary."""
    tabs: dict[str, list[str]] = {}
    for name in problems:
        tab = FIELDS_BY_NAME[name].tab if name in FIELDS_BY_NAME else "recapitulatif"
        tabs.setdefault(tab, []).append(name)
    return tabs


def choice_label(field: Field, choice: str, messages: Messages) -> str:
    family = {"optional_language_name": "language"}.get(field.name, field.name)
    return messages(f"choices.{family}.{choice}")


def shown_answer(
    field: Field, values: Mapping[str, Any], session: ExamSession, messages: Messages
) -> str:
    """An answer as the candidate reads it: « oui », « Anglais », « 05/03/2002 », « — »."""
    value = values.get(field.name)
    if field.kind == "flag":
        return messages("form.yes") if value else messages("form.no")
    if not value:
        return messages("form.empty")
    if field.options == "specialties":
        specialty = session.specialty(str(value))
        return specialty.label if specialty else str(value)
    if field.kind == "choice":
        return choice_label(field, str(value), messages)
    if field.kind == "date" and (day := parse_date(str(value))):
        return f"{day:%d/%m/%Y}"
    return str(value)


def summary(
    values: Mapping[str, Any], session: ExamSession, messages: Messages
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The applicable answers of the identification and candidature tabs, as
    (tab, [(label, answer)])."""
    return [
        (
            messages(f"form.tabs.{tab}"),
            [
                (messages(f"form.{f.name}.label"), shown_answer(f, values, session, messages))
                for f in FIELDS
                if f.tab == tab and applies(f, values, session)
            ],
        )
        for tab in ("identification", "candidature")
    ]


def ticked_declarations(values: Mapping[str, Any], messages: Messages) -> list[str]:
    """The declarations of the Modalités tab that the candidate ticked, in the words of
    their boxes: the confirmation they sign must carry them as they were accepted."""
    return [
        messages(f"form.{f.name}.label")
        for f in FIELDS
        if f.tab == "modalites" and f.kind == "flag" and values.get(f.name) is True
    ]
