"""« Signaler un changement d'adresse »: a new version of the registration while it may
change, else a notice the exam office applies, copied to the candidate."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult

from kiosk.registration_form import FIELDS_BY_NAME
from kiosk.registrations import ADDRESS_FIELDS
from kiosk.store.models import Account, AddressChange, Registration
from screens.fields import FormField
from screens.form import FormScreen
from screens.widgets import Button


class AddressScreen(FormScreen):
    """The address fields of the registration, prefilled, and one button to send them."""

    TITLE_KEY = "address.title"
    INTRO_KEY = "address.intro"

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__()
        self.values = values

    def fields(self) -> ComposeResult:
        for name in ADDRESS_FIELDS:
            yield FormField(
                name,
                self.t(f"form.{name}.label"),
                value=str(self.values.get(name) or ""),
                max_length=FIELDS_BY_NAME[name].max_length,
            )

    def buttons(self) -> ComposeResult:
        yield Button(self.t("address.submit"), id="submit", variant="primary")
        yield Button(self.t("common.back"), id="back")

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        address = {name: self.value(name) for name in ADDRESS_FIELDS}
        self.call("report", self._report, self.app.candidate, address)

    def _report(self, candidate: Account, address: dict[str, str]) -> Registration | AddressChange:
        """The change, then, for a notice, its PDF and the candidate's copy by mail."""
        registrations = self.services.registrations
        before = dict(self.values)
        outcome = registrations.report_address_change(candidate, address)
        if isinstance(outcome, AddressChange):
            self.services.documents.address_notice(candidate, outcome, before)
        return outcome

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_report(self, outcome: Registration | AddressChange) -> None:
        self.app.deliver_mail()
        if isinstance(outcome, AddressChange):
            self.app.back_home(self.t("address.noticed"))
        else:
            self.app.back_home(self.t("address.changed", version=outcome.version))
