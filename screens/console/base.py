"""What every console screen shares: a banner that says who works on which store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult

from screens.base import KioskScreen
from screens.form import FormScreen
from screens.masthead import Masthead

if TYPE_CHECKING:
    from kiosk.console.base import ConsoleService
    from kiosk.console.views import Officer
    from screens.console.app import ConsoleApp


def banner(screen: ConsoleScreen, title: str) -> ComposeResult:
    app = screen.app
    officer = app.officer
    where = app.t(f"console.where.{app.service.where}")
    who = (
        app.t(
            "console.banner",
            name=officer.name,
            role=app.t(f"console.role.{officer.role}"),
            where=where,
        )
        if officer
        else where
    )
    yield Masthead(app.t("console.title"), who, title)


class ConsoleScreen(KioskScreen):
    """A console screen: the console service and the officer at hand."""

    app: ConsoleApp  # type: ignore[assignment]  # a KioskScreen whose app is the console

    @property
    def service(self) -> ConsoleService:
        return self.app.service

    @property
    def officer(self) -> Officer | None:
        return self.app.officer

    def title_bar(self, title: str) -> ComposeResult:
        yield from banner(self, title)

    def can(self, task: str) -> bool:
        return self.officer is not None and self.service.can(self.officer, task)

    def action_noop(self) -> None:
        """For Escape where going back would leave the console's home, or the console."""

    def start_again(self, notice: str) -> None:
        """The officer has left (log-out, idle): the console is back at its first screen,
        which makes itself ready for the next person."""


class ConsoleForm(FormScreen, ConsoleScreen):
    """A console screen that is one form (its banner is :class:`ConsoleScreen`'s)."""
