"""Every screen by name: a screen opens another with ``self.app.open("login")``, never by
importing it, so that the screens do not know each other.

A route names its class as ``"module:Class"``. The module is imported the first time the
route is opened, not before: the kiosk imports its welcome screen to start, and the
registration form (Select, TabbedContent, the form's rules…) only for the first candidate
who opens it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen

# The candidates' kiosk (screens.app.KioskApp).
KIOSK: Mapping[str, str] = MappingProxyType(
    {
        "welcome": "screens.welcome:WelcomeScreen",
        "sign_up": "screens.signup:SignUpScreen",
        "activation": "screens.activation:ActivationScreen",
        "login": "screens.login:LoginScreen",
        "password_reset": "screens.password_reset:PasswordResetScreen",
        "home": "screens.home:HomeScreen",
        "registration": "screens.registration:RegistrationScreen",
        "address": "screens.address:AddressScreen",
        "documents": "screens.documents:DocumentsScreen",
        "help": "screens.help:HelpScreen",
        "staff_exit": "screens.staff_exit:StaffExitScreen",
        "walk_away": "screens.walk_away:WalkAwayWarning",
    }
)

# The staff console (screens.console.app.ConsoleApp).
CONSOLE: Mapping[str, str] = MappingProxyType(
    {
        "login": "screens.console.login:ConsoleLoginScreen",
        "home": "screens.console.home:ConsoleHomeScreen",
        "candidate": "screens.console.candidate:CandidateScreen",
        "identity": "screens.console.identity:IdentityScreen",
        "missing_pieces": "screens.console.missing:MissingPiecesScreen",
        "paper": "screens.console.paper:PaperDeskScreen",
        "conflicts": "screens.console.conflicts:ConflictsScreen",
        "address_changes": "screens.console.addresses:AddressChangesScreen",
        "publish": "screens.console.publish:PublishScreen",
        "audit": "screens.console.audit:AuditScreen",
    }
)


def load(target: str) -> type[Screen]:
    """The class ``"module:Class"`` names, its module imported if it is not yet."""
    module, _, name = target.partition(":")
    found: type[Screen] = getattr(importlib.import_module(module), name)
    return found


def loaded(target: str) -> type[Screen] | None:
    """The class ``"module:Class"`` names if its module is imported, else ``None``.

    For "is this screen showing?": a screen whose module was never imported is not.
    """
    module, _, name = target.partition(":")
    return getattr(sys.modules.get(module), name, None)
