"""The home screen says where the candidate's registration stands, and offers what fits it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from kiosk.clock import PARIS
from screens.app import build_app
from tests.support.pilot import SIZE, candidate, log_in, register, text_of

AFTER_CLOSE = datetime(2019, 11, 27, 19, 0, 1, tzinfo=PARIS)
SAVED_AT = "dimanche 10 novembre 2019 à 10:00"  # the frozen clock's Sunday morning


def offered(pilot) -> list[str]:
    """Which of « M'inscrire », « Changement d'adresse » and « Annuler » the home shows."""
    buttons = pilot.app.screen.query("#home-buttons Button")
    return [b.id for b in buttons if b.display and b.id in ("register", "address", "withdraw")]


@pytest.mark.parametrize(
    "situation, standing, buttons",
    [
        pytest.param(
            "none", "Vous n'êtes pas encore inscrit(e) à cette session.", ["register"], id="none"
        ),
        pytest.param(
            "draft",
            "Votre inscription est commencée mais pas enregistrée : "
            "elle ne vaut pas inscription tant que vous ne l'avez pas enregistrée.",
            ["register"],
            id="draft",
        ),
        pytest.param(
            "registered",
            f"Vous êtes inscrit(e) : version 1, enregistrée le {SAVED_AT}.",
            ["register", "address", "withdraw"],
            id="registered",
        ),
        pytest.param(
            "changed",
            f"Vous êtes inscrit(e) : version 2, enregistrée le {SAVED_AT}.",
            ["register", "address", "withdraw"],
            id="changed",
        ),
        pytest.param(
            "withdrawn",
            # The withdrawal is the record's 2nd version.
            "Vous avez annulé votre inscription (version 2).",
            ["register"],
            id="withdrawn",
        ),
        pytest.param(
            "registered, closed",
            f"Inscription validée (version 1, enregistrée le {SAVED_AT}).",
            ["address"],
            id="validated",
        ),
        pytest.param(
            "draft, closed",
            "Inscription non validée : aucune inscription n'a été enregistrée avant la clôture.",
            [],
            id="not_validated",
        ),
    ],
)
async def test_the_standing_and_what_it_offers(services, situation, standing, buttons):
    account = candidate(services)
    registrations = services.registrations
    if "draft" in situation:
        registrations.save_draft(account, {"usage_name": "Martin"})
    if situation in ("registered", "changed", "withdrawn", "registered, closed"):
        register(services, account)
    if situation == "changed":
        register(services, account, phone="05 49 00 00 00")
    if situation == "withdrawn":
        registrations.withdraw(account)
    if "closed" in situation:
        services.clock.set(AFTER_CLOSE)

    app = build_app(services)  # built on the clock as set: its idle timer starts from it
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#standing") == standing
        assert offered(pilot) == buttons


async def test_a_registered_candidate_is_told_what_to_post(app, services):
    account = candidate(services)
    register(services, account)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        # The shipped session gives no date for the paper file: none is told.
        assert text_of(pilot, "#todo") == (
            "À faire : imprimer la confirmation et la liste des pièces (« Mes documents »), "
            "vérifier, dater, signer, et envoyer le tout au rectorat."
        )
        assert str(pilot.app.screen.query_one("#register").label) == "Modifier mon inscription"


async def test_a_session_that_gives_a_date_for_the_paper_file_has_it_told(services):
    # Before the registrations are first used, which read the session then.
    services.session = replace(services.session, paper_deadline=date(2019, 12, 13))
    account = candidate(services)
    register(services, account)
    async with build_app(services).run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert text_of(pilot, "#todo") == (
            "À faire : imprimer la confirmation et la liste des pièces (« Mes documents »), "
            "vérifier, dater, signer, et envoyer le tout au rectorat avant le vendredi "
            "13 décembre 2019."
        )


async def test_without_registration_there_is_nothing_to_post(app, services):
    account = candidate(services)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        assert not pilot.app.screen.query_one("#todo").display
        assert str(pilot.app.screen.query_one("#register").label) == "M'inscrire"


# -- known bugs: these fail (XPASS) once fixed; then drop the marker -----------------------


async def test_an_incomplete_paper_file_names_the_missing_pieces(app, services):
    account = candidate(services)
    registration = register(services, account)
    Registration = services.store.Registration
    Registration.update(paper_status="incomplete", missing_pieces=["jdc"]).where(
        Registration.id == registration.id
    ).execute()
    async with app.run_test(size=SIZE) as pilot:
        await log_in(pilot, account)
        standing = text_of(pilot, "#standing")
        assert standing.startswith("Le rectorat a reçu votre dossier papier : il est incomplet.")
        assert not standing.endswith("Pièces à envoyer : .")
        assert "jdc" in standing.casefold()  # by its title, or at least its name
