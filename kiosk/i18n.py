"""Message catalogues: every text a person reads comes from ``assets/locales``.

French is the kiosk's language; English is offered on request. A catalogue is a TOML
file of tables, and a message is named by its path: ``signup.title``. Messages may
hold ``{placeholders}`` filled with ``str.format`` fields.
"""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any

from kiosk.assets import asset

DEFAULT_LANGUAGE = "fr"
LANGUAGES = ("fr", "en")


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalogue(language: str) -> dict[str, str]:
    """Every message of one language, by name."""
    with open(asset("locales", f"{language}.toml"), "rb") as handle:
        return _flatten(tomllib.load(handle))


class Messages:
    """Looks messages up in one language, falling back to French."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        if language not in LANGUAGES:
            language = DEFAULT_LANGUAGE
        self.language = language

    def __call__(self, key: str, **params: Any) -> str:
        template = catalogue(self.language).get(key) or catalogue(DEFAULT_LANGUAGE).get(key)
        if template is None:
            return key
        return template.format(**params) if params else template

    def has(self, key: str) -> bool:
        return key in catalogue(DEFAULT_LANGUAGE)


french = Messages(DEFAULT_LANGUAGE)
