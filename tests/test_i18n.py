"""The message catalogues: French and English hold the same messages, with the same
placeholders, and every message the code asks for exists."""

from __future__ import annotations

import ast
import re
import string
import tomllib
from datetime import date
from pathlib import Path

import pytest

from kiosk import formatting
from kiosk.exam_sessions import WindowState
from kiosk.i18n import LANGUAGES, Messages, catalogue, compile_catalogues, read_catalogue
from kiosk.pieces import load_rules
from kiosk.registration_form import FIELDS, TABS, choice_label

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "assets" / "locales"
CODE_DIRS = ("kiosk", "screens")
KEY_LABEL_MAX = 14  # the footer is 80 columns

FR = catalogue("fr")
EN = catalogue("en")
CATALOGUES = {"fr": FR, "en": EN}
TOP_TABLES = {key.split(".", 1)[0] for key in FR}

# Keys the code builds with f-strings, spelt out from the data they are built from.
MAIL_PURPOSES = ("activation", "reset")  # kiosk/accounts.py, _issue_code
MAIL_EVENTS = ("registered", "changed", "withdrawn", "document", "address_change")
STANDING_STATES = (  # kiosk/registrations.py, Standing.state
    "none",
    "draft",
    "registered",
    "withdrawn",
    "set_aside",
    "validated",
    "not_validated",
    "paper_received",
    "paper_complete",
    "paper_incomplete",
    "paper_validated",
)
DOCUMENT_STEPS = (1, 2, 3, 4)  # kiosk/delivery/pdf.py

# English messages that may read exactly as the French ones.
SAME_IN_BOTH = {
    "cli.metavar.url",
    "format.day",
    "format.seconds",
    "format.minutes_seconds",
    "format.hours_minutes",
    "form.empty",
    "document.version",
    "document.page",
    "choices.eps_activity.badminton",
    "keys.documents",
    "console.banner",
    "console.col.action",
}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def dummy(text: str) -> dict[str, str]:
    return {name: "x" for name in placeholders(text)}


def both():
    return pytest.mark.parametrize("language", LANGUAGES)


# -- the two catalogues match ------------------------------------------------------------


def test_every_language_has_a_catalogue():
    assert {path.stem for path in LOCALES.glob("*.toml")} == set(LANGUAGES)


def test_every_french_key_is_in_english():
    assert sorted(set(FR) - set(EN)) == []


def test_every_english_key_is_in_french():
    assert sorted(set(EN) - set(FR)) == []


def test_the_tables_are_the_same_in_both():
    def shape(table: dict, prefix: str = "") -> set[str]:
        names = set()
        for key, value in table.items():
            if isinstance(value, dict):
                names.add(f"{prefix}{key}.")
                names |= shape(value, f"{prefix}{key}.")
        return names

    tables = {}
    for language in LANGUAGES:
        with open(LOCALES / f"{language}.toml", "rb") as handle:
            tables[language] = shape(tomllib.load(handle))
    assert tables["fr"] == tables["en"]


@pytest.mark.parametrize("key", sorted(FR))
def test_each_message_has_the_same_placeholders_in_both(key):
    assert placeholders(EN.get(key, "")) == placeholders(FR[key])


@both()
def test_placeholders_are_plain_names(language):
    # The code fills messages with keyword arguments only, and no format spec.
    odd = {}
    for key, text in CATALOGUES[language].items():
        for _, field, spec, conversion in string.Formatter().parse(text):
            if field is not None and (not field.isidentifier() or spec or conversion):
                odd[key] = field
    assert odd == {}


@both()
def test_every_message_formats_with_its_placeholders(language):
    failures = {}
    for key, text in CATALOGUES[language].items():
        try:
            text.format(**dummy(text))
        except (KeyError, IndexError, ValueError) as error:
            failures[key] = repr(error)
    assert failures == {}


@both()
def test_no_message_is_empty(language):
    # Messages falls back to French on an empty message: an empty one is a mistake.
    assert [key for key, text in CATALOGUES[language].items() if not text.strip()] == []


def test_english_is_translated():
    untranslated = sorted(
        key
        for key in FR
        if key not in SAME_IN_BOTH and EN.get(key) == FR[key] and re.search("[a-zA-Z]", FR[key])
    )
    assert untranslated == []


# -- clean text ---------------------------------------------------------------------------


@both()
def test_no_message_looks_like_textual_markup(language):
    markup = re.compile(r"\[[A-Za-z@/]")
    assert [key for key, text in CATALOGUES[language].items() if markup.search(text)] == []


@both()
def test_single_line_messages_have_no_stray_spaces(language):
    stray = [
        key
        for key, text in CATALOGUES[language].items()
        if "\n" not in text and (text != text.strip() or "  " in text)
    ]
    assert stray == []


@both()
def test_multi_line_messages_have_no_trailing_spaces(language):
    trailing = [
        key
        for key, text in CATALOGUES[language].items()
        if "\n" in text and any(line != line.rstrip() for line in text.split("\n"))
    ]
    assert trailing == []


@both()
def test_key_labels_fit_the_footer(language):
    long = {
        key: text
        for key, text in CATALOGUES[language].items()
        if key.startswith("keys.") and len(text) > KEY_LABEL_MAX
    }
    assert long == {}


def test_the_language_key_names_the_other_language():
    assert FR["keys.language"] == "English"
    assert EN["keys.language"] == "Français"


# -- dates and durations --------------------------------------------------------------------


@both()
def test_day_and_month_names(language):
    messages = Messages(language)
    assert len(messages("format.weekdays").split()) == 7
    assert len(messages("format.months").split()) == 12


def test_dates_read_naturally_in_both_languages():
    assert formatting.day(date(2026, 12, 1), Messages("fr")) == "mardi 1er décembre 2026"
    assert formatting.day(date(2026, 12, 1), Messages("en")) == "Tuesday 1 December 2026"
    assert formatting.day(date(2019, 11, 27), Messages("en")) == "Wednesday 27 November 2019"


# -- every key the code uses exists ----------------------------------------------------------

LITERAL_KEY = re.compile(r"^[a-z_]+(\.[a-z_0-9]+)+$")
FILE_SUFFIXES = {
    "toml",
    "tcss",
    "csv",
    "txt",
    "py",
    "json",
    "log",
    "local",
    "sqlite3",
    "pdf",
    "ttf",
}


def _called(call: ast.Call) -> str:
    return getattr(call.func, "id", getattr(call.func, "attr", ""))


def _literal_keys() -> dict[str, list[str]]:
    """Dotted string literals of the code that begin with a catalogue table, and where.

    Left out: parts of f-strings (checked below from the data), Textual action names
    (the second argument of ``Binding``), and file names.
    """
    found: dict[str, list[str]] = {}
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            skipped: set[int] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.JoinedStr):
                    skipped.update(id(part) for part in ast.walk(node))
                elif (
                    isinstance(node, ast.Call) and _called(node) == "Binding" and len(node.args) > 1
                ):
                    skipped.add(id(node.args[1]))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in skipped
                    and LITERAL_KEY.match(node.value)
                    and node.value.split(".", 1)[0] in TOP_TABLES
                    and node.value.rsplit(".", 1)[1] not in FILE_SUFFIXES
                ):
                    found.setdefault(node.value, []).append(
                        f"{path.relative_to(ROOT)}:{node.lineno}"
                    )
    return found


LITERAL_KEYS = _literal_keys()


def test_the_code_scan_finds_keys():
    # A guard on the scan itself: these are used with t(...), french(...) and Problem(...).
    assert {
        "form.required",
        "welcome.steps",
        "keys.help",
        "password.too_short",
        "app.failure",
    } <= set(LITERAL_KEYS)
    assert "app.help" not in LITERAL_KEYS  # a Textual action, not a message


def test_every_literal_key_of_the_code_exists():
    missing = {key: where for key, where in LITERAL_KEYS.items() if key not in FR}
    assert missing == {}


def _audit_actions() -> dict[str, str]:
    """Every action the staff's audit trail records, with where: the second argument of
    each ``_record(officer, "action", …)`` call, and each ``action=`` of a row created,
    its module's constant resolved."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "kiosk").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if not isinstance(node.func, ast.Attribute):
                continue
            values = node.args[1:2] if node.func.attr == "_record" else []
            if node.func.attr in ("create", "insert"):  # an audit row written as it is
                values += [k.value for k in node.keywords if k.arg == "action"]
            for value in values:
                if isinstance(value, ast.Name):
                    value = ast.Constant(constants.get(value.id))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[value.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_action_of_the_audit_trail_has_its_label_in_both_languages():
    actions = _audit_actions()
    assert {"login", "login_refused", "kiosk_exit_refused", "publish"} <= set(actions)
    for language in (FR, EN):
        missing = {a: at for a, at in actions.items() if f"console.action.{a}" not in language}
        assert missing == {}


def _dynamic_keys() -> set[str]:
    keys: set[str] = set()
    for f in FIELDS:
        keys.add(f"form.{f.name}.label")
        if f.kind == "flag" and f.required:
            keys.add(f"form.{f.name}.required")
    for tab in TABS:
        keys |= {f"form.tabs.{tab}", f"form.tab_labels.{tab}"}
    for rule in load_rules():
        keys |= {f"pieces.{rule.id}.title", f"pieces.{rule.id}.why"}
    for state in WindowState:
        keys |= {f"home.window_{state.value}", f"welcome.{state.value}"}
    for event in (*MAIL_PURPOSES, *MAIL_EVENTS):
        keys |= {f"mail.{event}.subject", f"mail.{event}.body"}
    keys |= {f"standing.{state}" for state in STANDING_STATES}
    keys |= {f"document.step_{n}" for n in DOCUMENT_STEPS}
    return keys


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_built_from_the_data_exists(language):
    assert sorted(_dynamic_keys() - set(CATALOGUES[language])) == []


class _Recorder(Messages):
    """Records which keys are asked for instead of looking them up."""

    def __init__(self) -> None:
        super().__init__("fr")
        self.asked: list[str] = []

    def __call__(self, key: str, **params) -> str:
        self.asked.append(key)
        return key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_choice_has_a_label(language):
    recorder = _Recorder()
    for f in FIELDS:
        if f.kind == "choice" and f.options != "specialties":
            assert f.choices, f.name
            for choice in f.choices:
                choice_label(f, choice, recorder)
    missing = sorted(set(recorder.asked) - set(CATALOGUES[language]))
    assert recorder.asked and missing == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_there_is_no_choice_label_for_no_choice(language):
    families = {"optional_language_name": "language"}
    offered = {
        f"choices.{families.get(f.name, f.name)}.{choice}"
        for f in FIELDS
        if f.kind == "choice"
        for choice in f.choices
    }
    labels = {key for key in CATALOGUES[language] if key.startswith("choices.")}
    assert sorted(labels - offered) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_shown_in_that_language(language):
    messages = Messages(language)
    for key, text in CATALOGUES[language].items():
        assert messages(key, **dummy(text)) == text.format(**dummy(text))


# -- compiled catalogues ---------------------------------------------------------------------


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    """A copy of the catalogues' sources, without anything compiled."""
    for language in LANGUAGES:
        (tmp_path / f"{language}.toml").write_bytes((LOCALES / f"{language}.toml").read_bytes())
    return tmp_path


def test_a_compiled_catalogue_is_read_without_its_source_being_parsed(locales, monkeypatch):
    compile_catalogues(locales)
    assert sorted(p.name for p in locales.glob("*.compiled")) == ["en.compiled", "fr.compiled"]

    def no_parsing(*_args, **_kwargs):
        raise AssertionError("the TOML source was parsed")

    monkeypatch.setattr(tomllib, "loads", no_parsing)
    assert read_catalogue(locales, "fr") == FR
    assert read_catalogue(locales, "en") == EN


def test_a_source_changed_since_its_compilation_is_read_itself(locales):
    compile_catalogues(locales)
    source = locales / "fr.toml"
    source.write_text(
        source.read_text(encoding="utf-8").replace('"', '"Modifié : ', 1), encoding="utf-8"
    )
    changed = read_catalogue(locales, "fr")
    assert changed != FR
    assert sum(value.startswith("Modifié : ") for value in changed.values()) == 1


@pytest.mark.parametrize("content", [b"", b"\x00not marshal", b"\xe9\x03\x00\x00\x00"])
def test_a_damaged_compiled_catalogue_is_left_for_its_source(locales, content):
    (locales / "fr.compiled").write_bytes(content)
    assert read_catalogue(locales, "fr") == FR


def test_no_compiled_catalogue_means_the_source(locales):
    assert read_catalogue(locales, "en") == EN
