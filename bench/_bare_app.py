"""A bare Textual app, run as a program on a terminal: the start-up baseline of
``bench/terminal_start.py``. Run by path, never imported: ``python bench/_bare_app.py``.

One Static and a Footer, as ``bench/_start_child.py``'s bare app; the Static's text is
what the bench looks for on the screen.
"""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Static

READY = "Bare Textual app ready"


class BareApp(App):
    def compose(self) -> ComposeResult:
        yield Static(READY, id="hello")
        yield Footer()


if __name__ == "__main__":
    BareApp().run()
