"""Every state, every moment, its actions: each cell of kiosk.candidate_actions.TABLE walked
against the services, which allow what the cell offers and refuse the rest with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from kiosk.candidate_actions import TABLE, Action, State, refusal, save_action, state_of
from kiosk.clock import parse_instant
from kiosk.delivery.printing import printer_from_config
from kiosk.documents import DocumentService
from kiosk.errors import Refused
from kiosk.exam_sessions import WindowState
from kiosk.i18n import LANGUAGES, catalogue
from kiosk.registrations import RegistrationService
from kiosk.runtime.config import PrintConfig
from kiosk.store.models import Account
from tests.factories import CANDIDATE, mailed_code, valid_values

MOMENTS = {
    WindowState.NOT_YET_OPEN: parse_instant("2019-11-04T08:59:59"),
    WindowState.OPEN: parse_instant("2019-11-10T10:00:00"),
    WindowState.CLOSED: parse_instant("2019-11-27T19:00:00"),
}
SAVED = [state for state in State if state not in (State.NONE, State.DRAFT)]
NEW_ADDRESS = {
    "address_line1": "3 quai Duperré",
    "address_line2": "",
    "postal_code": "17000",
    "town": "La Rochelle",
    "country": "France",
    "phone": "05 46 00 00 00",
}


# -- the table itself ------------------------------------------------------------------------


def test_every_state_has_a_cell_at_every_moment():
    assert set(TABLE) == set(State)
    for state in State:
        assert set(TABLE[state]) == set(WindowState), state


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_cell_says_something_and_every_refusal_gives_a_reason(language):
    messages = catalogue(language)
    for state in State:
        for moment in WindowState:
            assert TABLE[state][moment].standing in messages, (state, moment)
            for action in Action:
                reason = refusal(state, moment, action)
                allowed = action in TABLE[state][moment].actions
                assert (reason is None) == allowed, (state, moment, action)
                assert reason is None or reason in messages, (state, moment, action, reason)


def test_my_documents_open_in_every_saved_state_at_every_moment():
    for state in SAVED:
        for moment in WindowState:
            assert Action.DOCUMENTS in TABLE[state][moment].actions, (state, moment)
    for moment in WindowState:
        assert Action.DOCUMENTS not in TABLE[State.NONE][moment].actions
        assert Action.DOCUMENTS not in TABLE[State.DRAFT][moment].actions


def test_nothing_changes_outside_the_window():
    changes = {Action.REGISTER, Action.CHANGE, Action.WITHDRAW}
    for state in State:
        for moment in (WindowState.NOT_YET_OPEN, WindowState.CLOSED):
            assert not changes & TABLE[state][moment].actions, (state, moment)


def test_outside_the_window_a_change_is_refused_for_the_moment_not_the_state():
    for moment, reason in (
        (WindowState.NOT_YET_OPEN, "registration.not_yet_open"),
        (WindowState.CLOSED, "registration.closed"),
    ):
        assert refusal(State.REGISTERED, moment, Action.CHANGE) == reason
        assert refusal(State.WITHDRAWN, moment, Action.REGISTER) == reason
        assert refusal(State.VALIDATED, moment, Action.CHANGE) == "registration.validated"
        assert refusal(State.SET_ASIDE, moment, Action.WITHDRAW) == "registration.set_aside"


@pytest.mark.parametrize(
    "status, paper_status, has_draft, state",
    [
        (None, None, False, State.NONE),
        (None, None, True, State.DRAFT),
        ("registered", None, True, State.REGISTERED),
        ("registered", "received", False, State.RECEIVED),
        ("registered", "complete", False, State.COMPLETE),
        ("registered", "incomplete", False, State.INCOMPLETE),
        ("registered", "validated", False, State.VALIDATED),
        ("withdrawn", None, False, State.WITHDRAWN),
        ("withdrawn", "received", False, State.WITHDRAWN),
        ("set_aside", None, False, State.SET_ASIDE),
        ("set_aside", "incomplete", False, State.SET_ASIDE),
    ],
)
def test_the_state_is_read_from_what_the_store_holds(status, paper_status, has_draft, state):
    assert state_of(status, paper_status, has_draft) is state


# -- the cells, against the services ---------------------------------------------------------


@pytest.fixture
def registrations(kiosk_store, clock, session) -> RegistrationService:
    return RegistrationService(kiosk_store, clock, session)


@pytest.fixture
def documents(kiosk_store, clock, session, tmp_path) -> DocumentService:
    def printer():
        return printer_from_config(PrintConfig(), tmp_path / "impressions")

    return DocumentService(kiosk_store, clock, session, tmp_path / "documents", printer)


@pytest.fixture
def candidate(accounts, signed_up) -> Account:
    account, code = signed_up
    return accounts.activate(account.email, code)


def put_in(state: State, account: Account, registrations, documents, session) -> None:
    """The candidate brought to ``state`` as it happens: through the services while the
    window is open, and the rectorat's part written as its sync would."""
    if state is State.NONE:
        return
    if state is State.DRAFT:
        registrations.save_draft(account, {"birth_town": "Niort"})
        return
    registration = registrations.save(account, valid_values(session))
    documents.documents(account)  # the confirmation, made as « Mes documents » makes it
    if state is State.WITHDRAWN:
        registrations.withdraw(account)
        return
    Registration = registrations.store.Registration
    if state is State.SET_ASIDE:
        fields: dict = {"status": "set_aside"}
    elif state is State.REGISTERED:
        return
    else:
        missing = ["jdc"] if state is State.INCOMPLETE else None
        fields = {"paper_status": state.value, "missing_pieces": missing}
    Registration.update(**fields).where(Registration.id == registration.id).execute()


def attempt(
    action: Action, account: Account, registrations, documents, session
) -> Callable[[], object]:
    """What the candidate does for ``action``, through the service that does it."""

    def first_document() -> str:
        listed = documents.documents(account)
        if listed:
            return listed[0].id
        # Nothing of theirs to print: they can only name another candidate's document.
        return str(documents.store.Document.select().first().id)

    return {
        Action.REGISTER: lambda: registrations.save(account, valid_values(session)),
        Action.CHANGE: lambda: registrations.save(
            account, valid_values(session, phone="05 49 00 00 00")
        ),
        Action.WITHDRAW: lambda: registrations.withdraw(account),
        Action.ADDRESS: lambda: registrations.report_address_change(account, NEW_ADDRESS),
        Action.DOCUMENTS: lambda: documents.documents(account),
        Action.PRINT: lambda: (
            documents.print(account, first_document()),
            documents.email(account, first_document()),
        ),
    }[action]


CELLS = [
    pytest.param(state, moment, id=f"{state.value}-{moment.value}")
    for state in State
    for moment in WindowState
]


@pytest.mark.parametrize("state, moment", CELLS)
def test_the_standing_is_the_cells(
    state, moment, candidate, registrations, documents, session, clock
):
    put_in(state, candidate, registrations, documents, session)
    clock.set(MOMENTS[moment])
    standing = registrations.standing(candidate)
    cell = TABLE[state][moment]
    assert standing.kind is state
    assert f"standing.{standing.state}" == cell.standing
    assert standing.actions == cell.actions
    assert standing.to_do is cell.to_do


# « Enregistrer » is a registration or a change as the state makes it, never both.
ATTEMPTS = [
    pytest.param(state, moment, action, id=f"{state.value}-{moment.value}-{action.value}")
    for state in State
    for moment in WindowState
    for action in Action
    if action not in (Action.REGISTER, Action.CHANGE) or save_action(state) is action
]


@pytest.mark.parametrize("state, moment, action", ATTEMPTS)
def test_the_services_allow_what_the_cell_offers_and_refuse_the_rest(
    state, moment, action, candidate, accounts, registrations, documents, session, clock
):
    if action is Action.PRINT and state in (State.NONE, State.DRAFT):
        # One without a confirmation can only name another candidate's.
        other = accounts.sign_up(replace(CANDIDATE, email="claire.martin@exemple.fr"))
        other = accounts.activate(other.email, mailed_code(accounts.store, other.email))
        put_in(State.REGISTERED, other, registrations, documents, session)
    put_in(state, candidate, registrations, documents, session)
    clock.set(MOMENTS[moment])
    do = attempt(action, candidate, registrations, documents, session)
    reason = refusal(state, moment, action)
    if action is Action.DOCUMENTS:
        # The list is never refused: where the cell does not offer it, it is empty, and
        # « Mes documents » tells that reason (the staff's reprint reads it too).
        listed = do()
        assert (listed == []) == (reason == "documents.none"), listed
    elif reason is None:
        do()
    else:
        with pytest.raises(Refused) as refused:
            do()
        assert refused.value.problems[""].key == reason
