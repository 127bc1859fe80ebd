"""Plain text on screen is laid out again only when its words change."""

from __future__ import annotations

from textual.app import App, ComposeResult

from screens.widgets import Plain


class Status(App):
    def compose(self) -> ComposeResult:
        yield Plain("Hors ligne", id="status")


async def test_the_same_words_again_leave_the_screen_as_it_is(monkeypatch):
    # A sync report every round, a screen shown again: each laid the whole screen out
    # again, even when its words had not moved.
    app = Status()
    async with app.run_test():
        status = app.query_one(Plain)
        updates: list[str] = []
        monkeypatch.setattr(status, "update", lambda content, **_: updates.append(str(content)))
        status.show("Hors ligne")
        assert updates == []
        status.show("En ligne [b]")
        assert updates == ["En ligne [b]"]
