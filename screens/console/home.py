"""The console's home: find a candidate, see the session at a glance, reach each task."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.widgets import DataTable

from kiosk import formatting
from kiosk.console.views import Candidate, Glance, bars
from screens.console.base import ConsoleForm
from screens.console.tables import PlainTable
from screens.fields import FormField
from screens.widgets import Body, Button, Plain, Problem

# Which task each key and button opens, and the right it needs.
# Enough to act on; the count above says how many there are in all.
REFUSED_SHOWN = 5

TASKS = {
    "paper": "receive_paper",
    "conflicts": "resolve_conflict",
    "addresses": "apply_address_change",
    "publish": "publish",
    "export": "export",
    "audit": "audit",
}


class ConsoleHomeScreen(ConsoleForm):
    """Search, results, the glance, and the tasks this officer may do on this store."""

    TITLE_KEY = "console.home_title"
    ENTER_PRESSES = {"query": "search"}
    BINDINGS = [
        Binding("escape", "noop", show=False),
        Binding("f2", "find", "console.keys.search"),
        # Each task's key is said on its button: the footer keeps to the search and the
        # log-out, and fits a staff terminal 80 columns wide.
        Binding("f3", "paper", "console.keys.paper", show=False),
        Binding("f4", "conflicts", "console.keys.conflicts", show=False),
        Binding("f5", "export", "console.keys.export", show=False),
        Binding("f6", "audit", "console.keys.audit", show=False),
        Binding("f7", "addresses", "console.keys.addresses", show=False),
        Binding("f8", "publish", "console.keys.publish", show=False),
        Binding("f10", "app.log_out", "console.keys.log_out"),
    ]
    DEFAULT_CSS = """
    ConsoleHomeScreen #results { height: auto; max-height: 10; margin-bottom: 1; }
    ConsoleHomeScreen .chart { margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        yield from self.title_bar(self.t(self.TITLE_KEY))
        with Body(id="body"):
            yield Plain("", id="notice", classes="notice")
            yield Problem(id="form-problem")
            yield FormField(
                "query",
                self.t("console.search"),
                max_length=254,
                hint=self.t("console.search_hint"),
            )
            with Horizontal(classes="buttons"):
                yield Button(self.t("console.search_button"), id="search", variant="primary")
            yield Plain("", id="results-count")
            yield PlainTable(
                self.t("console.col.name"),
                self.t("console.col.birth"),
                self.t("console.col.reference"),
                self.t("console.col.number"),
                self.t("console.col.status"),
                self.t("console.col.paper"),
                id="results",
            )
            yield Plain(self.t("console.glance.title"), classes="section")
            yield Plain("", id="glance-counts")
            yield Plain("", id="glance-addresses")
            yield Plain("", id="glance-refused")
            yield Plain("", id="chart-days", classes="chart")
            yield Plain("", id="chart-specialties", classes="chart")
            keys = {b.action: b.key.upper() for b in self.BINDINGS if isinstance(b, Binding)}
            with Grid(classes="actions"):
                for name, task in TASKS.items():
                    if self.can(task):
                        yield Button(f"{keys[name]} {self.t(f'console.keys.{name}')}", id=name)
                yield Button(
                    f"{keys['app.log_out']} {self.t('console.keys.log_out')}", id="log-out"
                )
        yield from self.footer()

    def on_mount(self) -> None:
        self.query_one("#notice", Plain).display = False
        self.query_one("#results").display = False
        self.query_one("#results-count").display = False
        self.query_one("#glance-addresses").display = False
        self.query_one("#query").focus()
        self.call("glance", self.service.glance, self.officer)

    def shown_again(self) -> None:
        self.call("glance", self.service.glance, self.officer)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        task = TASKS.get(action)
        return task is None or self.can(task)

    # -- search ---------------------------------------------------------------------------

    def action_find(self) -> None:
        self.query_one("#query").focus()

    @on(Button.Pressed, "#search")
    def search(self) -> None:
        self.call("find", self.service.find, self.officer, self.value("query"))

    def on_done_find(self, found: list[Candidate]) -> None:
        table = self.query_one("#results", PlainTable)
        table.fill(
            [
                (
                    c.account_id,
                    [
                        f"{c.family_name} {c.given_names}",
                        formatting.numeric_date(c.birth_date),
                        c.reference or c.email,
                        c.number or "",
                        self.t(f"console.status.{c.status or 'none'}"),
                        self.t(f"console.paper_status.{c.paper_status or 'none'}")
                        if c.status
                        else "",
                    ],
                )
                for c in found
            ]
        )
        table.display = bool(found)
        count = (
            self.t("console.results", count=len(found)) if found else self.t("console.results_none")
        )
        self.query_one("#results-count", Plain).show(count)
        self.query_one("#results-count", Plain).display = True
        if found:
            table.focus()

    @on(DataTable.RowSelected, "#results")
    def open_candidate(self, event: DataTable.RowSelected) -> None:
        self.app.open("candidate", str(event.row_key.value))

    # -- the glance -----------------------------------------------------------------------

    def on_done_glance(self, glance: Glance) -> None:
        conflicts = (
            self.t("console.glance.conflicts_elsewhere")
            if glance.conflicts is None
            else glance.conflicts
        )
        self.query_one("#glance-counts", Plain).show(
            self.t(
                "console.glance.counts",
                registered=glance.registered,
                pending=glance.paper_pending,
                incomplete=glance.paper_incomplete,
                conflicts=conflicts,
            )
        )
        addresses = self.query_one("#glance-addresses", Plain)
        addresses.display = glance.address_changes is not None
        if glance.address_changes is not None:
            addresses.show(self.t("console.glance.address_changes", count=glance.address_changes))
        refused = self.query_one("#glance-refused", Plain)
        refused.display = bool(glance.refused)
        refused.show("\n".join(self._refused_lines(glance)))
        days = [(formatting.short_day(day, self.app.messages), n) for day, n in glance.per_day]
        day_lines = bars(days, width=40)
        specialty_lines = bars([(label[:34], n) for label, n in glance.per_specialty], width=30)
        empty = self.t("console.glance.empty")
        self.query_one("#chart-days", Plain).show(
            "\n".join([self.t("console.glance.per_day"), *(day_lines or [empty])])
        )
        self.query_one("#chart-specialties", Plain).show(
            "\n".join([self.t("console.glance.per_specialty"), *(specialty_lines or [empty])])
        )

    def _refused_lines(self, glance: Glance) -> list[str]:
        """The kiosk's items the rectorat will never take: staff must see to them."""
        if not glance.refused:
            return []
        lines = [self.t("console.glance.refused", count=len(glance.refused))]
        for item in glance.refused[:REFUSED_SHOWN]:
            reason = f"sync.reason.{item.reason}"
            lines.append(
                self.t(
                    "console.glance.refused_item",
                    entity=self.t(f"console.entity.{item.entity}"),
                    id=item.record_id[:8],
                    reason=self.t(reason) if self.app.messages.has(reason) else item.reason,
                    at=formatting.instant(item.at, self.service.session.zone, self.app.messages),
                )
            )
        return lines

    # -- tasks ----------------------------------------------------------------------------

    @on(Button.Pressed, "#paper")
    def action_paper(self) -> None:
        self.app.open("paper")

    @on(Button.Pressed, "#conflicts")
    def action_conflicts(self) -> None:
        self.app.open("conflicts")

    @on(Button.Pressed, "#addresses")
    def action_addresses(self) -> None:
        self.app.open("address_changes")

    @on(Button.Pressed, "#publish")
    def action_publish(self) -> None:
        self.app.open("publish")

    @on(Button.Pressed, "#audit")
    def action_audit(self) -> None:
        self.app.open("audit")

    @on(Button.Pressed, "#export")
    def action_export(self) -> None:
        self.call("export", self.service.export_csv, self.officer)

    def on_done_export(self, path) -> None:
        self.say(self.t("console.exported", path=str(path)))

    @on(Button.Pressed, "#log-out")
    def log_out(self) -> None:
        self.app.action_log_out()
