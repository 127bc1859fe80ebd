"""« M'inscrire », key press by key press at 80×24: the form's tabs, what shows when,
drafts, saving and changing, the window's close, withdrawal; then its snapshots."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from argon2 import PasswordHasher
from textual.widgets import Checkbox, Select

from kiosk.clock import PARIS, Clock, parse_instant
from kiosk.passwords import Hasher
from kiosk.registration_form import LOCKED_FIELDS
from kiosk.runtime.config import load_config
from kiosk.runtime.services import build_services
from screens.address import AddressScreen
from screens.app import build_app
from screens.dialogs import Confirm
from screens.fields import Field
from screens.home import HomeScreen
from screens.registration import ROWS_A_FRAME, RegistrationScreen
from tests.factories import valid_values
from tests.support.pilot import (
    EMAIL,
    FAMILY,
    GIVEN,
    SIZE,
    SUNDAY_MORNING,
    candidate,
    click,
    log_in,
    queued_mails,
    register,
    settle,
    steady,
    text_of,
)

AFTER_CLOSE = datetime(2019, 11, 27, 19, 0, 1, tzinfo=PARIS)
TITLE = "Baccalauréat professionnel — session de juin 2020"
OTHER = "paul.martin@exemple.fr"


# -- helpers ---------------------------------------------------------------------------


def on(pilot, screen: type) -> bool:
    return type(pilot.app.screen) is screen


def form(pilot) -> RegistrationScreen:
    assert on(pilot, RegistrationScreen)
    return pilot.app.screen


async def open_form(pilot) -> RegistrationScreen:
    """F2 on the home: the form opens on its first tab."""
    await pilot.press("f2")
    await settle(pilot)
    return form(pilot)


async def press(pilot, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


async def accept_the_rules(pilot) -> None:
    """On « 1 Modalités »: tick both boxes (space, tab, space) and go on."""
    pilot.app.screen.query_one("#accept_rules").focus()
    await press(pilot, "space", "tab", "space", "f8")


async def retype(pilot, name: str, text: str) -> None:
    """Focus the field ``name``, empty it with keys, and type ``text`` key by key."""
    pilot.app.screen.query_one(f"#{name}").focus()
    await pilot.press("home", "ctrl+k", *text)


def choose(pilot, name: str, value: str) -> None:
    """Set a Select as a mouse would: for long lists where keys would be many."""
    pilot.app.screen.query_one(f"#{name}", Select).value = value


def shown(pilot, name: str) -> bool:
    return pilot.app.screen.query_one(f"#field-{name}").display


def problems(pilot) -> dict[str, str]:
    """The problems shown at fields, by field name."""
    return {
        p.id.removeprefix("problem-"): str(p.render())
        for p in pilot.app.screen.query(".problem")
        if p.display and p.id and p.id.startswith("problem-")
    }


def summary(pilot) -> list[str]:
    """The récapitulatif's lines, as shown."""
    return [str(line.render()) for line in pilot.app.screen.query("#summary Plain")]


async def fill_identification(pilot) -> None:
    """On « 2 Identification », its cursor on the family name (kept from the account):
    each field reached with Tab, the two choices made with Enter and the arrows."""
    await pilot.press("tab", "tab")  # usage name left empty; given names kept
    await pilot.press("tab", "enter", "down", "enter")  # Sexe: the first choice, Féminin
    await pilot.press("tab", *"05/03/2002", "tab", *"Poitiers", "tab")  # born in France, kept
    await pilot.press("tab", "enter", "down", "enter")  # Nationalité: Française
    await pilot.press(
        "tab", *"12 rue de la Paix", "tab", "tab", *"86000", "tab", *"Poitiers", "tab"
    )
    await pilot.press("tab", *"06 12 34 56 78")


async def fill_candidature(pilot, services) -> None:
    """On « 3 Informations candidature », its cursor on the status."""
    await pilot.press("enter", "down", "enter")  # Statut: candidat(e) individuel(le)
    choose(pilot, "specialty", services.session.specialties[0].code)
    pilot.app.screen.query_one("#language").focus()
    await pilot.press("enter", "down", "enter")  # Anglais
    choose(pilot, "jdc_situation", "jdc_effectuee")
    await pilot.pause()


# -- a whole registration ----------------------------------------------------------------


async def test_a_whole_registration_with_keys(app, services):
    account = candidate(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_form(pilot)
        assert screen.tab == "modalites"
        assert str(screen.query_one("#tabs").get_tab("tab-modalites").label) == "1 Modalités"
        # Drawn once the screen is, with the cursor on the rules, to be read first.
        assert screen.query_one("#tabs").visible
        assert pilot.app.focused is screen.query_one("#tab-modalites .tab-body")

        await press(pilot, "f8")  # nothing ticked
        assert screen.tab == "modalites"
        assert problems(pilot)["accept_rules"] == (
            "Cochez cette case pour continuer : "
            "l'inscription n'est possible qu'après avoir accepté les modalités."
        )
        assert pilot.app.focused.id == "accept_rules"

        await accept_the_rules(pilot)
        assert screen.tab == "identification"
        assert pilot.app.focused.id == "family_name"
        await fill_identification(pilot)
        await press(pilot, "f8")
        assert (screen.tab, problems(pilot)) == ("candidature", {})

        await fill_candidature(pilot, services)
        await press(pilot, "f8")
        assert (screen.tab, problems(pilot)) == ("recapitulatif", {})
        lines = summary(pilot)
        assert f"Nom de naissance : {FAMILY}" in lines
        assert "Sexe : Féminin" in lines
        assert "Date de naissance (JJ/MM/AAAA) : 05/03/2002" in lines
        assert "Nationalité : Française" in lines
        assert f"Spécialité : {services.session.specialties[0].label}" in lines
        assert "Langue vivante obligatoire : Anglais" in lines
        assert lines[-3:] == [
            "Pièces justificatives à joindre",
            "– La confirmation d'inscription, vérifiée, datée et signée",
            "– Le certificat individuel de participation à la JDC (ou l'attestation d'exemption)",
        ]
        assert not screen.query_one("#form-problem").display

        assert pilot.app.focused.id == "save"
        await press(pilot, "enter")  # « Enregistrer »
        assert on(pilot, HomeScreen)
        assert text_of(pilot, "#notice").startswith(
            "Votre inscription est enregistrée (version 1). "
        )
        assert text_of(pilot, "#standing") == (
            "Vous êtes inscrit(e) : version 1, enregistrée le dimanche 10 novembre 2019 à 10:00."
        )
        saved = services.registrations.registration(account)
        assert (saved.answers["sex"], saved.answers["birth_date"], saved.answers["phone"]) == (
            "F",
            "2002-03-05",
            "06 12 34 56 78",
        )
        assert queued_mails(services, EMAIL)[-1] == f"Confirmation d'inscription : {TITLE}"
        assert services.registrations.draft(account) is None


async def test_tabs_walked_faster_than_drawn_end_on_the_last_with_the_cursor_in_it(app, services):
    """A tab is laid out in one frame and drawn in the next ones (screens/registration.py):
    a key pressed in between must not bring the cursor, nor the screen, back to the tab
    left, nor leave a row of any tab undrawn."""
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_form(pilot)
        await click(pilot, "#--content-tab-tab-recapitulatif")
        await settle(pilot)
        await press(pilot, "f7", "f7")
        assert screen.tab == "identification"
        assert pilot.app.focused.id == "family_name"
        assert all(pane.visible for pane in screen.query("TabPane"))
        await press(pilot, "f8", "f8", "f8")
        assert screen.tab == "recapitulatif"
        assert pilot.app.focused.id == "save"
        assert all(widget.visible for widget in screen.query("TabPane *"))


async def test_a_tab_is_drawn_a_few_rows_a_frame_and_the_cursor_goes_in_once_all_are(app, services):
    """Drawing a tab's dozens of fields in one step of the event loop held the keys for
    up to 50 ms: once laid out, a tab is drawn ROWS_A_FRAME rows a frame, in order, and
    the cursor goes in once the last is drawn."""
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_form(pilot)
        pane = screen.query_one("#tab-identification")
        rows = [pane, *pane.query_one(".tab-body").children, *pane.query(".buttons")]
        frames: list[tuple[int, bool]] = []  # rows drawn, and whether a field has the cursor

        def drawn_now() -> None:
            frames.append((sum(row.visible for row in rows), screen.focused is not None))

        def after_each_frame() -> None:
            drawn_now()
            if frames[-1][0] < len(rows) and len(frames) < 100:
                screen.call_after_refresh(after_each_frame)

        screen.action_next()  # what F8 does
        drawn_now()
        screen.call_after_refresh(after_each_frame)
        for _ in range(200):
            if frames[-1][0] == len(rows):
                break
            await pilot.pause(0.01)
        drawn = [count for count, _ in frames]
        steps = [after - before for before, after in zip(drawn, drawn[1:], strict=False)]
        assert len(rows) > 2 * ROWS_A_FRAME and drawn[0] == 0
        assert drawn[-1] == len(rows) and all(0 <= step <= ROWS_A_FRAME for step in steps)
        assert not any(focused for _, focused in frames[:-1])
        assert pilot.app.focused.id == "family_name"


# -- what shows when ----------------------------------------------------------------------


async def test_born_abroad_asks_for_the_parents_names(app, services):
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, candidate(services))
        await open_form(pilot)
        await accept_the_rules(pilot)
        assert pilot.app.screen.query_one("#birth_country").value == "France"
        assert not shown(pilot, "father_name") and not shown(pilot, "mother_name")

        await retype(pilot, "birth_country", "Maroc")
        await pilot.pause()
        assert shown(pilot, "father_name") and shown(pilot, "mother_name")

        await retype(pilot, "birth_country", "france")
        await pilot.pause()
        assert not shown(pilot, "father_name") and not shown(pilot, "mother_name")


async def test_distance_learning_and_the_optional_language_show_their_fields(app, services):
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session, status=""))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await press(pilot, "f8", "f8")
        assert pilot.app.focused.id == "status"
        assert not shown(pilot, "distance_school") and not shown(pilot, "optional_language_name")

        await pilot.press("enter", "down", "down", "enter")  # Enseignement à distance
        await pilot.pause()
        assert pilot.app.screen.values()["status"] == "distance"
        assert shown(pilot, "distance_school") and shown(pilot, "pfmp_required")
        assert not shown(pilot, "no_training")

        pilot.app.screen.query_one("#optional_language").focus()
        await pilot.press("space")
        await pilot.pause()
        assert shown(pilot, "optional_language_name")
        await pilot.press("space")
        await pilot.pause()
        assert not shown(pilot, "optional_language_name")


@pytest.fixture
def demo_services(tmp_path):
    """The demonstration session, which no longer offers the épreuve facultative of EPS."""
    config = load_config(environ={}, overrides={"data_dir": tmp_path / "demo", "session": "demo"})
    services = build_services(config, Clock(parse_instant(SUNDAY_MORNING), frozen=True))
    services.accounts.hasher = Hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield services
    services.close()


async def test_a_session_without_optional_eps_has_no_field_for_it(demo_services):
    app = build_app(demo_services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, candidate(demo_services))
        screen = await open_form(pilot)
        assert not screen.query("#field-optional_eps") and not screen.query("#field-eps_activity")
        assert screen.query("#field-optional_language") and screen.query("#field-optional_mobility")
        assert screen.query("#field-eps_exempt")  # the compulsory EPS stays


# -- problems keep what was typed ------------------------------------------------------------


async def test_problems_on_identification_are_shown_at_their_fields_and_nothing_is_lost(
    app, services
):
    account = candidate(services)
    services.registrations.save_draft(
        account, valid_values(services.session, birth_date="", postal_code="")
    )
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_form(pilot)
        await press(pilot, "f8")
        await retype(pilot, "usage_name", "Martin")
        await retype(pilot, "birth_date", "31/02/2002")
        await retype(pilot, "postal_code", "8600")
        await retype(pilot, "phone", "05 49 00 00 00")
        typed = screen.values()
        assert typed["birth_date"] == "31/02/2002" and typed["town"] == "Poitiers"

        await press(pilot, "f8")
        assert screen.tab == "identification"
        assert problems(pilot) == {
            "birth_date": "Date attendue au format JJ/MM/AAAA, par exemple 05/03/2002.",
            "postal_code": "Un code postal français compte 5 chiffres.",
        }
        assert screen.query_one("#field-birth_date", Field).invalid
        assert pilot.app.focused.id == "birth_date"
        assert screen.values() == typed


async def test_saving_with_a_problem_on_another_tab_names_that_tab(app, services):
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session, phone=""))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_form(pilot)
        await click(pilot, "#--content-tab-tab-recapitulatif")  # straight to the last tab
        await settle(pilot)
        fix_first = (
            "Certains renseignements sont à corriger : Identification. "
            "Ils sont signalés dans chaque onglet."
        )
        assert text_of(pilot, "#form-problem") == fix_first

        await click(pilot, "#save")
        await settle(pilot)
        assert on(pilot, RegistrationScreen)
        assert services.registrations.registration(account) is None
        assert screen.query_one("#form-problem").display
        assert text_of(pilot, "#form-problem") == fix_first
        assert problems(pilot) == {"phone": "Ce champ est obligatoire."}
        assert screen.tab == "identification"  # where the problem is


# -- the draft ----------------------------------------------------------------------------


async def test_escape_keeps_a_draft_for_its_account_only(app, services):
    account = candidate(services)
    other = candidate(services, email=OTHER, family="Martin", given="Paul")
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await accept_the_rules(pilot)
        await retype(pilot, "usage_name", "Martin")
        await retype(pilot, "birth_town", "Niort")
        await press(pilot, "escape")

        assert on(pilot, HomeScreen)
        draft = services.registrations.draft(account)
        assert draft is not None
        assert (
            draft.values["usage_name"],
            draft.values["birth_town"],
            draft.values["accept_rules"],
        ) == ("Martin", "Niort", True)
        assert "commencée mais pas enregistrée" in text_of(pilot, "#standing")

        await press(pilot, "f10")
        await log_in(pilot, account)
        screen = await open_form(pilot)
        assert (
            screen.values()["usage_name"] == "Martin" and screen.values()["birth_town"] == "Niort"
        )
        assert screen.query_one("#accept_rules", Checkbox).value

        await press(pilot, "escape", "f10")
        await log_in(pilot, other)
        assert text_of(pilot, "#standing") == "Vous n'êtes pas encore inscrit(e) à cette session."
        screen = await open_form(pilot)
        values = screen.values()
        assert (values["family_name"], values["usage_name"], values["birth_town"]) == (
            "Martin",
            "",
            "",
        )
        assert values["accept_rules"] is False


# -- a change -------------------------------------------------------------------------------


async def test_a_change_is_version_2_and_the_identity_stays_locked(app, services):
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert str(pilot.app.screen.query_one("#register").label) == "Modifier mon inscription"
        screen = await open_form(pilot)
        for name in LOCKED_FIELDS:
            assert screen.query_one(f"#field-{name}").disabled, name
            assert screen.query_one(f"#{name}").is_disabled, name
        assert not screen.query_one("#field-usage_name").disabled
        assert screen.values()["family_name"] == FAMILY

        await press(pilot, "f8")  # both boxes were ticked when registering
        assert pilot.app.focused.id == "usage_name"  # the first field that can change
        await retype(pilot, "phone", "05 49 00 00 00")
        await press(pilot, "f8")
        await press(pilot, "f8")
        assert "Téléphone : 05 49 00 00 00" in summary(pilot)
        await press(pilot, "enter")

        assert on(pilot, HomeScreen)
        assert (
            text_of(pilot, "#notice")
            == "Votre modification est enregistrée (version 2). Un message vous a été envoyé."
        )
        assert text_of(pilot, "#standing").startswith("Vous êtes inscrit(e) : version 2, ")
        saved = services.registrations.registration(account)
        assert (saved.version, saved.answers["phone"], saved.answers["family_name"]) == (
            2,
            "05 49 00 00 00",
            FAMILY,
        )
        assert queued_mails(services, EMAIL)[-1] == f"Modification d'inscription : {TITLE}"


# -- after the close -----------------------------------------------------------------------


async def test_after_closing_only_the_address_change_is_offered(services):
    account = candidate(services)
    register(services, account)
    services.clock.set(AFTER_CLOSE)
    app = build_app(services)  # built on the clock as set: its idle timer starts from it
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        home = pilot.app.screen
        assert not home.query_one("#register").display
        assert home.query_one("#address").display
        await press(pilot, "f2")
        assert on(pilot, HomeScreen)

        await press(pilot, "f3")
        assert on(pilot, AddressScreen)
        assert pilot.app.screen.query_one("#address_line1").value == "12 rue de la Paix"
        await retype(pilot, "address_line1", "3 place du Marché")
        await retype(pilot, "postal_code", "79000")
        await retype(pilot, "town", "Niort")
        await click(pilot, "#submit")
        await settle(pilot)

        assert on(pilot, HomeScreen)
        assert text_of(pilot, "#notice") == (
            "Votre changement d'adresse est transmis au bureau des examens, qui le reportera"
            " sur votre dossier. Vous en recevez une copie par e-mail ; l'avis est aussi dans"
            " « Mes documents »."
        )
        # The shipped session gives no e-mail for the rectorat: the change is recorded, and
        # reaches the rectorat with the next sync.
        changes = services.store.AddressChange
        with services.store.connection_context():
            [change] = changes.select()
            [notice] = services.store.Document.select().where(
                services.store.Document.kind == "address_notice"
            )
            copies = [
                row.payload
                for row in services.store.OutboxRow.select()
                if row.kind == "mail" and row.payload["to"] == account.email
            ]
        assert change.address["address_line1"] == "3 place du Marché"
        assert notice.source_id == str(change.id)
        assert copies[-1]["attachments"][0]["filename"] == notice.file_name


# -- withdrawal -----------------------------------------------------------------------------


async def test_withdrawal_asks_first_and_escape_keeps_the_registration(app, services):
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await click(pilot, "#withdraw")
        await pilot.pause()
        assert on(pilot, Confirm)
        assert pilot.app.focused.id == "no"
        await press(pilot, "escape")
        assert on(pilot, HomeScreen)
        assert services.registrations.registration(account).status == "registered"

        await click(pilot, "#withdraw")
        await pilot.pause()
        await press(pilot, "tab", "enter")  # « Oui, annuler mon inscription »
        assert on(pilot, HomeScreen)
        assert services.registrations.registration(account).status == "withdrawn"
        assert text_of(pilot, "#notice") == (
            "Votre inscription est annulée. Un message de confirmation vous a été envoyé."
        )
        assert text_of(pilot, "#standing").startswith("Vous avez annulé votre inscription")
        assert queued_mails(services, EMAIL)[-1] == f"Annulation d'inscription : {TITLE}"


async def test_a_confirmed_withdrawal_is_not_lost_to_the_home_read_again_on_resume(app, services):
    """« Oui » withdraws even when the home, shown again, already reads its standing afresh
    (the answer is given from outside the app's tasks, so that the resume is queued before
    the home runs the answer)."""
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await click(pilot, "#withdraw")
        await settle(pilot)
        assert on(pilot, Confirm)
        pilot.app.screen.dismiss(True)
        await settle(pilot)
        assert on(pilot, HomeScreen)
        assert services.registrations.registration(account).status == "withdrawn"
        assert text_of(pilot, "#standing").startswith("Vous avez annulé votre inscription")


# -- hostile answers ------------------------------------------------------------------------


async def test_markup_in_an_answer_is_shown_as_typed(app, services):
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await press(pilot, "f8")
        await pilot.press("tab", *"[b]X[/b] [@click=app.quit]x[/]")  # the usage name
        await press(pilot, "f8")
        await press(pilot, "f8")
        assert "Nom d'usage (facultatif) : [b]X[/b] [@click=app.quit]x[/]" in summary(pilot)
        line = next(p for p in pilot.app.screen.query("#summary Plain") if "[b]" in str(p.render()))
        await pilot.click(line, offset=(30, 0))  # where a link would be, were it markup
        await pilot.pause()
        assert pilot.app.is_running and on(pilot, RegistrationScreen)


# -- snapshots (update: --snapshot-update) ---------------------------------------------------


def with_form(*, draft: bool = False, then=None):
    """A ``run_before``: log in (with a complete draft if asked), open the form, do ``then``."""

    async def run_before(pilot):
        services = pilot.app.services
        account = candidate(services)
        if draft:
            values = valid_values(services.session, family_name=FAMILY, given_names=GIVEN, sex="F")
            services.registrations.save_draft(account, values)
        await log_in(pilot, account)
        await open_form(pilot)
        if then is not None:
            await then(pilot)
        await steady(pilot)

    return run_before


def keys(*pressed: str):
    async def then(pilot):
        await press(pilot, *pressed)

    return then


@pytest.mark.parametrize("tab", ["modalites", "identification", "candidature", "recapitulatif"])
def test_snapshot_of_a_fresh_form(app, snap_compare, tab):
    async def click_tab(pilot):
        if tab != "modalites":
            await pilot.click(f"#--content-tab-tab-{tab}")

    assert snap_compare(app, terminal_size=SIZE, run_before=with_form(then=click_tab))


def test_snapshot_of_identification_with_problems(app, snap_compare):
    async def then(pilot):
        await accept_the_rules(pilot)
        await retype(pilot, "birth_date", "31/02/2002")
        await retype(pilot, "postal_code", "8600")
        await press(pilot, "f8")

    assert snap_compare(app, terminal_size=SIZE, run_before=with_form(then=then))


def test_snapshot_of_the_recapitulatif_of_a_complete_form(app, snap_compare):
    assert snap_compare(
        app, terminal_size=SIZE, run_before=with_form(draft=True, then=keys("f8", "f8", "f8"))
    )


def test_snapshot_of_the_home_after_saving(app, snap_compare):
    run_before = with_form(draft=True, then=keys("f8", "f8", "f8", "enter"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# -- known bugs in screens/: these fail (XPASS) once fixed; then drop the marker --------


async def test_typing_in_an_open_list_picks_the_matching_choice(app, services):
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session, sex=""))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        screen = await open_form(pilot)
        await press(pilot, "f8")
        screen.query_one("#sex").focus()
        await pilot.press("enter", *"mas", "enter")
        await pilot.pause()
        assert screen.values()["sex"] == "M"


async def test_a_refused_save_puts_the_cursor_on_the_field_to_correct(app, services):
    account = candidate(services)
    services.registrations.save_draft(account, valid_values(services.session, phone=""))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await click(pilot, "#--content-tab-tab-recapitulatif")
        await settle(pilot)
        await click(pilot, "#save")
        await settle(pilot)
        assert pilot.app.focused.id == "phone"


async def test_moving_to_the_next_field_does_not_repaint_the_whole_form(app, services):
    """Textual repaints a whole screen when its focus moves; a kiosk screen leaves that to
    the widgets the move restyles. On a form of dozens of fields, a whole repaint would
    hold the keyboard for tens of milliseconds at every Tab."""
    account = candidate(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await accept_the_rules(pilot)
        screen = form(pilot)
        left = screen.focused
        repaints: list[tuple] = []
        refresh = screen.refresh

        def counted(*regions, repaint=True, **kwargs):
            if repaint and not regions:
                repaints.append(kwargs)
            return refresh(*regions, repaint=repaint, **kwargs)

        screen.refresh = counted  # type: ignore[method-assign]
        await press(pilot, "tab")
        assert screen.focused not in (None, left)
        assert repaints == []


async def test_leaving_an_untouched_form_keeps_no_draft(demo_services):
    account = candidate(demo_services)
    app = build_app(demo_services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await press(pilot, "escape")
        assert demo_services.registrations.draft(account) is None
        assert text_of(pilot, "#standing") == "Vous n'êtes pas encore inscrit(e) à cette session."


async def test_registering_again_after_a_withdrawal_says_it_is_registered(app, services):
    account = candidate(services)
    register(services, account)
    services.registrations.withdraw(account)
    services.registrations.save_draft(account, valid_values(services.session))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await press(pilot, "f8", "f8", "f8")
        await press(pilot, "enter")  # « Enregistrer »
        assert on(pilot, HomeScreen)
        assert queued_mails(services, EMAIL)[-1] == f"Confirmation d'inscription : {TITLE}"
        assert text_of(pilot, "#notice").startswith("Votre inscription est enregistrée")


async def test_the_home_knows_of_the_draft_escape_just_kept(app, services):
    account = candidate(services)
    save_draft = services.registrations.save_draft

    def slow_save_draft(account, values):  # a store a little busy, as at a real kiosk
        time.sleep(0.3)
        save_draft(account, values)

    services.registrations.save_draft = slow_save_draft
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        await open_form(pilot)
        await press(
            pilot, "tab", "space", "escape"
        )  # from the rules to one box ticked: a draft to keep
        assert services.registrations.draft(account) is not None
        assert "commencée mais pas enregistrée" in text_of(pilot, "#standing")


async def test_a_ticked_box_differs_from_an_empty_one_without_colour(app, services):
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, candidate(services))
        screen = await open_form(pilot)
        await press(pilot, "tab", "space")  # from the rules to the first box, ticked
        ticked, empty = (
            screen.query_one(f"#{name}", Checkbox)
            for name in ("accept_rules", "not_school_enrolled")
        )
        assert (ticked.value, empty.value) == (True, False)
        assert str(ticked.render()) != str(empty.render())
