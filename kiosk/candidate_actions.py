"""What a candidate sees and may do, in each state of their registration and at each moment
of the registration window: one table, read by the home screen (its buttons and keys) and
by the services, which refuse what it does not offer.

The states, as the store holds them (``kiosk/store/models.py``):

========== =================================================================
none       no registration, no draft
draft      a ``Draft`` and no ``Registration``: typed, never saved
registered ``Registration.status`` « registered », no ``paper_status``
received   status « registered », ``paper_status`` « received »
complete   status « registered », ``paper_status`` « complete »
incomplete status « registered », ``paper_status`` « incomplete »
validated  status « registered », ``paper_status`` « validated »
withdrawn  status « withdrawn » (the candidate's désinscription)
set_aside  status « set_aside » (écartée by the exam office)
========== =================================================================

The paper statuses are written by the rectorat alone. « Validated » is the paper status
the exam office sets last (``kiosk/rectorat/exam_office.py``). It is not the « Inscription
validée » the home shows for a registered candidate once the window has closed: the
domain brief has every registration shown validated or not validated after the close,
which is the ``standing`` of the *after* cells below.

The moments are :class:`~kiosk.exam_sessions.WindowState`: before, during, after.

Why the cells are as they are:

- Registering, changing and withdrawing need the open window (the note: « aucune
  inscription ne sera reçue après cette date »). Once the paper file is received,
  complete or incomplete, the candidate may still change or withdraw until the close,
  as the note allows; once validated, the registration is definitive and only the
  rectorat changes it. A registration set aside is the exam office's alone.
- « Mes documents » opens in every state where something was saved, at every moment:
  the account serves « tout au long de la session ». Its confirmation prints, or goes by
  e-mail, only while the registration is live: a withdrawn or set-aside one must never
  reach the rectorat on paper.
- A new postal address is told to the rectorat « aussitôt », so also before and after
  the window, for any live registration.
- « À faire » (what to post) is told until the rectorat has the paper file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kiosk.exam_sessions import WindowState


class State(Enum):
    """A candidate's registration, as the table tells the states apart."""

    NONE = "none"
    DRAFT = "draft"
    REGISTERED = "registered"
    RECEIVED = "received"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    VALIDATED = "validated"
    WITHDRAWN = "withdrawn"
    SET_ASIDE = "set_aside"


class Action(Enum):
    """What a candidate may ask for from the home screen (``PRINT`` from « Mes documents »)."""

    REGISTER = "register"  # « M'inscrire »: the first save, or again after a withdrawal
    CHANGE = "change"  # « Modifier mon inscription »: a new version
    WITHDRAW = "withdraw"  # « Annuler mon inscription »
    ADDRESS = "address"  # « Changement d'adresse »
    DOCUMENTS = "documents"  # « Mes documents »: the list
    PRINT = "print"  # print the current confirmation, or receive it by e-mail


@dataclass(frozen=True)
class Cell:
    """One state at one moment: what the home says, what it offers, whether it says what
    to post."""

    standing: str  # the message the home shows (catalogue name)
    actions: frozenset[Action]
    to_do: bool = False


BEFORE, DURING, AFTER = WindowState.NOT_YET_OPEN, WindowState.OPEN, WindowState.CLOSED
S = State
REGISTER, CHANGE, WITHDRAW = Action.REGISTER, Action.CHANGE, Action.WITHDRAW
ADDRESS, DOCUMENTS, PRINT = Action.ADDRESS, Action.DOCUMENTS, Action.PRINT


def _cell(standing: str, *actions: Action, to_do: bool = False) -> Cell:
    return Cell(standing, frozenset(actions), to_do)


# Live: changed until the close, its documents and address at any moment.
_LIVE_DURING = (CHANGE, WITHDRAW, ADDRESS, DOCUMENTS, PRINT)
_LIVE_OUTSIDE = (ADDRESS, DOCUMENTS, PRINT)

TABLE: dict[State, dict[WindowState, Cell]] = {
    S.NONE: {
        BEFORE: _cell("standing.none"),
        DURING: _cell("standing.none", REGISTER),
        AFTER: _cell("standing.not_validated"),
    },
    S.DRAFT: {
        BEFORE: _cell("standing.draft"),
        DURING: _cell("standing.draft", REGISTER),
        AFTER: _cell("standing.not_validated"),
    },
    S.REGISTERED: {
        BEFORE: _cell("standing.registered", *_LIVE_OUTSIDE, to_do=True),
        DURING: _cell("standing.registered", *_LIVE_DURING, to_do=True),
        AFTER: _cell("standing.validated", *_LIVE_OUTSIDE, to_do=True),
    },
    S.RECEIVED: {
        BEFORE: _cell("standing.paper_received", *_LIVE_OUTSIDE),
        DURING: _cell("standing.paper_received", *_LIVE_DURING),
        AFTER: _cell("standing.paper_received", *_LIVE_OUTSIDE),
    },
    S.COMPLETE: {
        BEFORE: _cell("standing.paper_complete", *_LIVE_OUTSIDE),
        DURING: _cell("standing.paper_complete", *_LIVE_DURING),
        AFTER: _cell("standing.paper_complete", *_LIVE_OUTSIDE),
    },
    S.INCOMPLETE: {
        BEFORE: _cell("standing.paper_incomplete", *_LIVE_OUTSIDE),
        DURING: _cell("standing.paper_incomplete", *_LIVE_DURING),
        AFTER: _cell("standing.paper_incomplete", *_LIVE_OUTSIDE),
    },
    S.VALIDATED: {
        BEFORE: _cell("standing.paper_validated", *_LIVE_OUTSIDE),
        DURING: _cell("standing.paper_validated", *_LIVE_OUTSIDE),
        AFTER: _cell("standing.paper_validated", *_LIVE_OUTSIDE),
    },
    S.WITHDRAWN: {
        BEFORE: _cell("standing.withdrawn", DOCUMENTS),
        DURING: _cell("standing.withdrawn", REGISTER, DOCUMENTS),
        AFTER: _cell("standing.withdrawn", DOCUMENTS),
    },
    S.SET_ASIDE: {
        BEFORE: _cell("standing.set_aside", DOCUMENTS),
        DURING: _cell("standing.set_aside", DOCUMENTS),
        AFTER: _cell("standing.set_aside", DOCUMENTS),
    },
}

# Why the state refuses an action that its open-window cell does not offer either.
_UNSAVED = (S.NONE, S.DRAFT)
_LIVE = (S.REGISTERED, S.RECEIVED, S.COMPLETE, S.INCOMPLETE)
_LOCKED = {S.VALIDATED: "registration.validated", S.SET_ASIDE: "registration.set_aside"}
REFUSALS: dict[Action, dict[State, str]] = {
    REGISTER: {**dict.fromkeys(_LIVE, "registration.already_registered"), **_LOCKED},
    CHANGE: {
        **dict.fromkeys((*_UNSAVED, S.WITHDRAWN), "registration.nothing_to_change"),
        **_LOCKED,
    },
    WITHDRAW: {
        **dict.fromkeys((*_UNSAVED, S.WITHDRAWN), "registration.nothing_to_withdraw"),
        **_LOCKED,
    },
    ADDRESS: {
        **dict.fromkeys((*_UNSAVED, S.WITHDRAWN), "address.no_registration"),
        S.SET_ASIDE: "registration.set_aside",
    },
    DOCUMENTS: dict.fromkeys(_UNSAVED, "documents.none"),
    PRINT: {
        # Without a confirmation of their own, a candidate can only name someone else's.
        **dict.fromkeys(_UNSAVED, "documents.unknown"),
        **dict.fromkeys((S.WITHDRAWN, S.SET_ASIDE), "documents.not_current"),
    },
}

# Why the moment refuses what the state would allow while the window is open.
MOMENT_REFUSALS = {BEFORE: "registration.not_yet_open", AFTER: "registration.closed"}


def state_of(status: str | None, paper_status: str | None, has_draft: bool = False) -> State:
    """The table's state for what the store holds: the registration's ``status`` and
    ``paper_status`` (``None`` without a registration), and whether a draft is kept."""
    if status is None:
        return S.DRAFT if has_draft else S.NONE
    if status != "registered":
        # A withdrawal or a setting aside outweighs whatever the paper file had become.
        return State(status)
    return State(paper_status) if paper_status else S.REGISTERED


def cell(state: State, moment: WindowState) -> Cell:
    return TABLE[state][moment]


def allowed(state: State, moment: WindowState, action: Action) -> bool:
    return action in TABLE[state][moment].actions


def save_action(state: State) -> Action:
    """What « Enregistrer » is in this state: a registration, or a change of one."""
    return REGISTER if state in (*_UNSAVED, S.WITHDRAWN) else CHANGE


def refusal(state: State, moment: WindowState, action: Action) -> str | None:
    """The catalogue name of why ``action`` is refused now, or ``None`` if it is allowed."""
    if allowed(state, moment, action):
        return None
    if allowed(state, DURING, action):
        return MOMENT_REFUSALS[moment]
    return REFUSALS[action][state]
