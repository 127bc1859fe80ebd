"""The top of every screen (screens/masthead.py), in a small app of its own."""

from __future__ import annotations

from textual.app import App, ComposeResult

from screens.masthead import Masthead

HEADING = "Académie de Poitiers · Candidats individuels"


class OneMasthead(App):
    def __init__(self, banner: str, status: str, title: str) -> None:
        super().__init__()
        self.texts = (banner, status, title)

    def compose(self) -> ComposeResult:
        yield Masthead(*self.texts)


def lines(app: App) -> list[str]:
    return [line.text for line in app.screen.query_one(Masthead).render_lines(app.screen.region)]


async def shown(banner: str, status: str, title: str, width: int) -> list[str]:
    app = OneMasthead(banner, status, title)
    async with app.run_test(size=(width, 4)) as pilot:
        await pilot.pause()
        return lines(app)[:2]


async def test_the_banner_has_the_status_at_its_right_and_the_title_below():
    first, second = await shown(HEADING, "○ Borne autonome", "Créer mon compte", 80)
    assert first == f" {HEADING}".ljust(80 - len("  ○ Borne autonome ")) + "  ○ Borne autonome "
    assert second == " Créer mon compte".ljust(80)


async def test_a_text_too_long_for_its_line_ends_in_an_ellipsis():
    title = "Inscription au baccalauréat professionnel"
    first, second = await shown(HEADING, "○ Hors ligne", title, 30)
    assert first == " Académie de P…  ○ Hors ligne "
    assert second == " Inscription au baccalauréat… "


async def test_text_is_shown_as_it_is_never_read_as_markup_nor_sent_as_control():
    first, second = await shown("[b]Poitiers[/b]", "\x1b[31mrouge", "[red]titre\x07", 60)
    assert first.startswith(" [b]Poitiers[/b] ") and first.rstrip().endswith("[31mrouge")
    assert "\x1b" not in first and "\x07" not in second
    assert second.startswith(" [red]titre")


async def test_the_status_changes_in_place():
    app = OneMasthead(HEADING, "○ Hors ligne", "Accueil")
    async with app.run_test(size=(80, 4)) as pilot:
        masthead = app.screen.query_one(Masthead)
        masthead.show_status("● En ligne")
        await pilot.pause()
        assert masthead.status == "● En ligne"
        assert lines(app)[0].endswith("  ● En ligne ")


async def test_a_line_break_in_a_text_is_a_space_and_the_title_stays_on_its_line():
    first, second = await shown("Académie\nde Poitiers", "山田太郎 · réception\n", "Recherche", 60)
    assert first.startswith(" Académie de Poitiers ") and first.endswith("山田太郎 · réception ")
    assert second == " Recherche".ljust(60)
