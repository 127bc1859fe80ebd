"""A field not yet on screen (a form's later tab, mounted just after the first) answers
with the value it will open with: a draft kept at that moment loses nothing, and holds
what the field shows once it is mounted."""

from __future__ import annotations

from textual.app import App

from screens.fields import ChoiceField, FlagField, FormField

OPTIONS = [("Oui", "oui"), ("Non", "non")]


def _fields():
    return [
        FormField("town", "Commune", value="Poitiers"),
        FormField("street", "Adresse", value="12 rue\x1b[2J de la Paix"),
        ChoiceField("jdc", "JDC", OPTIONS, value="non", prompt="…"),
        ChoiceField("gone", "Ancien choix", OPTIONS, value="peut-être", prompt="…"),
        FlagField("rules", "J'accepte", value=True),
        FlagField("school", "Non scolarisé", value=False),
    ]


class Form(App):
    def __init__(self, fields) -> None:
        super().__init__()
        self.fields = fields

    def compose(self):
        yield from self.fields


async def test_a_field_answers_before_its_mount_what_it_shows_once_mounted():
    fields = _fields()
    before = [f.value for f in fields]
    assert before == ["Poitiers", "12 rue�[2J de la Paix", "non", "", True, False]
    async with Form(fields).run_test():
        assert [f.value for f in fields] == before


async def test_once_mounted_a_field_answers_what_its_control_holds():
    fields = _fields()
    async with Form(fields).run_test() as pilot:
        fields[0].input.value = "Niort"
        fields[4].query_one("#rules").value = False
        await pilot.pause()
        assert [f.value for f in fields][0::4] == ["Niort", False]
