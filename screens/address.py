"""« Signaler un changement d'adresse »: the new address goes to the rectorat, even after
closing."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.widgets import Button

from kiosk.registration_form import FIELDS_BY_NAME
from kiosk.registrations import ADDRESS_FIELDS
from screens.fields import FormField
from screens.form import FormScreen


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
        self.call(
            "report", self.services.registrations.report_address_change, self.app.candidate, address
        )

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def on_done_report(self, _) -> None:
        self.app.deliver_mail()
        self.app.back_home(self.t("address.done"))
