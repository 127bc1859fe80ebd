"""The key bar: the screen's shown keys on one line, following the focus; a click presses one."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from screens.key_bar import KeyBar


class Field(Input):
    BINDINGS = [Binding("f5", "clear", "Vider")]

    def action_clear(self) -> None:
        self.value = ""


class Keys(App):
    BINDINGS = [
        Binding("f1", "help", "Aide"),
        Binding("f2", "help", "Aide encore"),  # the same action: shown once, as f1
        Binding("f3", "hidden", "Caché", show=False),
        Binding("f4", "later", "Plus tard"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.helped = 0

    def compose(self) -> ComposeResult:
        yield Input(id="plain")
        yield Field(id="field")
        yield KeyBar()

    def action_help(self) -> None:
        self.helped += 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "later" else True  # shown, but cannot act now


async def test_the_bar_shows_each_action_once_and_follows_the_focus() -> None:
    app = Keys()
    async with app.run_test(size=(80, 10)) as pilot:
        bar = app.query_one(KeyBar)
        app.query_one("#plain").focus()
        await pilot.pause()
        assert bar.keys == ["f1", "f4"]
        assert str(bar.render()) == " f1 Aide  f4 Plus tard "
        app.query_one("#field").focus()
        await pilot.pause()
        assert bar.keys == ["f5", "f1", "f4"]
        assert "f5 Vider" in str(bar.render())


async def test_a_key_that_cannot_act_is_dimmed() -> None:
    app = Keys()
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        drawn = app.query_one(KeyBar).render()
        dimmed = [span for span in drawn.spans if "dim" in str(span.style)]
        assert [drawn.plain[span.start : span.end] for span in dimmed] == [" f4 Plus tard "]


async def test_a_click_on_a_key_presses_it_and_a_click_beside_does_nothing() -> None:
    app = Keys()
    async with app.run_test(size=(80, 10)) as pilot:
        app.query_one("#plain").focus()
        await pilot.pause()
        await pilot.click(KeyBar, offset=(2, 0))  # on « f1 Aide »
        await pilot.pause()
        assert app.helped == 1
        await pilot.click(KeyBar, offset=(70, 0))  # past the last key
        await pilot.pause()
        assert app.helped == 1
