"""A refusal says why: a character or a paste that a field refuses, or a paste it cuts, is
explained in French on the field's problem line, not by the bell alone; a paste is cut
at the field's length before anything else is done with it."""

from __future__ import annotations

import time

import pytest
from textual import events
from textual.widgets import Input

from tests.support.pilot import SIZE, settle, text_of

FULL = "Ce champ est plein : {maximum} caractères au plus."
CUT = "Le texte collé a été coupé : ce champ tient {maximum} caractères au plus."
REFUSED = "Texte collé refusé : il contient des caractères qui ne peuvent pas être saisis."


async def sign_up_field(pilot, name: str = "family_name") -> Input:
    await pilot.press("c")  # « Créer mon compte »
    await settle(pilot)
    field = pilot.app.screen.query_one(f"#{name}", Input)
    field.focus()
    await pilot.pause()
    return field


async def paste(pilot, text: str) -> None:
    event = events.Paste(text)
    event.set_sender(pilot.app)
    pilot.app.post_message(event)
    await pilot.pause()
    await pilot.pause()


def problem(pilot, name: str = "family_name") -> str:
    shown = pilot.app.screen.query_one(f"#problem-{name}")
    return text_of(pilot, f"#problem-{name}") if shown.display else ""


async def test_a_huge_paste_is_cut_at_the_field_s_length_and_says_so(app):
    async with app.run_test(size=SIZE) as pilot:
        field = await sign_up_field(pilot)
        assert field.max_length
        started = time.monotonic()
        await paste(pilot, "Dupont" * 200_000 + "\nsecond line")  # 1.2 MB
        assert time.monotonic() - started < 2
        assert field.value == ("Dupont" * 200_000)[: field.max_length]
        assert problem(pilot) == CUT.format(maximum=field.max_length)
        # The next change in the field takes the explanation away.
        await pilot.press("backspace")
        assert problem(pilot) == ""


async def test_a_paste_that_fits_is_taken_silently(app):
    async with app.run_test(size=SIZE) as pilot:
        field = await sign_up_field(pilot)
        await paste(pilot, "Dupont\nJean")
        assert field.value == "Dupont"
        assert problem(pilot) == ""


@pytest.mark.parametrize("text", ["Du\x1b[2Jpont", "\u202eDupont", "Du\x07pont", "Du\u200bpont"])
async def test_a_paste_with_a_character_that_cannot_be_typed_is_refused_with_why(app, text):
    async with app.run_test(size=SIZE) as pilot:
        field = await sign_up_field(pilot)
        await pilot.press(*"Ma")
        await paste(pilot, text)
        assert field.value == "Ma"
        assert problem(pilot) == REFUSED


async def test_a_character_typed_into_a_full_field_is_refused_with_why(app):
    async with app.run_test(size=SIZE) as pilot:
        field = await sign_up_field(pilot)
        field.value = "D" * field.max_length
        await pilot.pause()
        await pilot.press("x")
        assert field.value == "D" * field.max_length
        assert problem(pilot) == FULL.format(maximum=field.max_length)
        # A paste into the full field is refused for the same reason.
        await pilot.press("backspace")
        assert problem(pilot) == ""
        await paste(pilot, "xy")
        assert field.value == "D" * (field.max_length - 1)
        assert problem(pilot) == FULL.format(maximum=field.max_length)


async def test_the_refusal_is_said_in_the_candidate_s_language(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f11")  # English, from the welcome
        await pilot.pause()
        await sign_up_field(pilot)
        await paste(pilot, "Du\x07pont")
        assert problem(pilot).startswith("Pasted text refused")


async def test_a_button_pressed_keeps_the_focus_after_a_refusal_and_the_next_key_is_answered(
    app, services
):
    """« Me connecter » pressed from the keyboard, the password wrong: the answer comes,
    and the button still has the focus, so Tab and Entrée go on working."""
    from tests.support.pilot import EMAIL, candidate

    candidate(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")  # the login screen
        await settle(pilot)
        screen = pilot.app.screen
        screen.query_one("#email", Input).value = EMAIL
        screen.query_one("#password", Input).value = "pas le bon mot de passe"
        screen.query_one("#submit").focus()
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert "incorrect" in text_of(pilot, "#form-problem")
        assert pilot.app.focused is screen.query_one("#submit")
        await pilot.press("shift+tab")
        assert pilot.app.focused is not None and pilot.app.focused.id != "submit"
