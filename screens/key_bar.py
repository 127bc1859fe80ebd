"""The keys a screen answers to, on one line at its foot."""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget, can_focus=False):
    """What Textual's ``Footer`` shows (each shown binding of the screen: its key, then what
    it does; dimmed while it cannot act), drawn as one line of text.

    The footer is a widget per key, and makes them again whenever the focus moves: on a
    form, every field left. This bar draws one line again instead. A click on a key
    presses it, as on the footer.
    """

    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description"}

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
        color: $footer-foreground;
        background: $footer-background;
        .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[tuple[int, int, str]] = []  # (first column, past the last, key)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.refresh()

    def render(self) -> Content:
        key_style = self.get_visual_style("key-bar--key")
        description_style = self.get_visual_style("key-bar--description")
        parts: list[Content] = []
        self._keys = []
        column = 0
        actions: set[str] = set()  # the first binding of an action is shown, as on the footer
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            part = Content.assemble(
                (f" {self.app.get_key_display(binding)} ", key_style),
                (f"{binding.description} ", description_style),
            )
            if not enabled:
                part = part.stylize("dim")
            parts.append(part)
            self._keys.append((column, column + part.cell_length, binding.key))
            column += part.cell_length
        return Content("").join(parts)

    @property
    def keys(self) -> list[str]:
        """The keys shown, left to right, as last drawn."""
        return [key for _, _, key in self._keys]

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._keys:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
