"""Where the shipped assets are, in a source checkout and in an installed wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def assets_dir() -> Path:
    """The folder of styles, fonts, messages and reference data.

    A wheel ships it inside the ``kiosk`` package; a source checkout (and an editable
    install) keeps it beside the package, at the project root.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "assets", here.parent / "assets"):
        if (candidate / "locales").is_dir():
            return candidate
    raise FileNotFoundError("the kiosk's assets folder is missing from this installation")


def asset(*parts: str) -> Path:
    """The path of one asset, such as ``asset("sessions", "demo.toml")``."""
    return assets_dir().joinpath(*parts)
