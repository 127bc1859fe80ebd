"""What the exam office does at the rectorat's console reaches the candidate's kiosk.

The ``rectorat`` and ``kiosks`` fixtures are in ``tests/support/sync_world.py``."""

from __future__ import annotations

import uuid

from kiosk.console.on_rectorat import RectoratConsole
from kiosk.console.views import Officer

EXAM_OFFICE = Officer("dec", "exam_office")


def test_an_incomplete_file_and_a_corrected_identity_reach_the_kiosk(
    rectorat, kiosks, clock, tmp_path
):
    rectorat.start()
    kiosk = kiosks("borne-a")
    account, registration = kiosk.candidate(
        "jean.dupont@exemple.fr", "Dupont", "Jean", "05/03/2002"
    )
    assert kiosk.sync().online and kiosk.pending() == 0
    session = kiosk.services.session
    console = RectoratConsole(rectorat.store, clock, session, tmp_path / "exports")

    console.mark_paper(EXAM_OFFICE, str(account.id), False, ["confirmation"])
    console.correct_identity(EXAM_OFFICE, str(account.id), {"given_names": "Jean-Marc"})
    rectorat.service.sequence()
    assert kiosk.sync(force=True).online

    here = kiosk.registration(registration.id)
    assert (here.paper_status, here.missing_pieces) == ("incomplete", ["confirmation"])
    assert (here.version, here.answers["given_names"]) == (registration.version + 1, "Jean-Marc")
    standing = kiosk.services.registrations.standing(kiosk.account(account.id))
    assert standing.state == "paper_incomplete" and standing.missing == ("confirmation",)
    # The kiosk has nothing of its own to send back: the rectorat's version is the latest.
    assert kiosk.pending() == 0
    assert (
        rectorat.store.Registration.get_by_id(uuid.UUID(str(registration.id))).version
        == registration.version + 1
    )
