"""Message catalogues: every text a person reads comes from ``assets/locales``.

French is the kiosk's language; English is offered on request. A catalogue is a TOML
file of tables, and a message is named by its path: ``signup.title``. Messages may
hold ``{placeholders}`` filled with ``str.format`` fields.

Reading the French TOML took a kiosk 7 ms of its start, as long as the rest of its
configuration. ``python -m kiosk.i18n`` (``make compiled``) compiles each catalogue
beside its source, as gettext's ``.mo`` beside its ``.po``; a compiled catalogue is
read only while it holds the checksum of the source beside it, for this Python.
"""

from __future__ import annotations

import marshal
import sys
import zlib
from functools import cache
from pathlib import Path
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


# What a compiled catalogue is read by: marshal's format is that of one Python version.
_COMPILED_FORMAT = (1, sys.version_info[:2])


def _read_source(source: bytes) -> dict[str, str]:
    import tomllib

    return _flatten(tomllib.loads(source.decode("utf-8")))


def read_catalogue(folder: Path, language: str) -> dict[str, str]:
    """Every message of one language in ``folder``, by name: compiled, or read from its
    source when it has none, or one of another source or of another Python."""
    source = (folder / f"{language}.toml").read_bytes()
    try:
        form, checksum, messages = marshal.loads((folder / f"{language}.compiled").read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return _read_source(source)
    if form != _COMPILED_FORMAT or checksum != zlib.crc32(source):
        return _read_source(source)
    return messages


def compile_catalogues(folder: Path) -> list[Path]:
    """Compile every catalogue of ``folder`` beside its source; the paths written."""
    written = []
    for language in LANGUAGES:
        source = (folder / f"{language}.toml").read_bytes()
        compiled = folder / f"{language}.compiled"
        data = marshal.dumps((_COMPILED_FORMAT, zlib.crc32(source), _read_source(source)))
        partial = compiled.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(compiled)  # whole or not at all, for a kiosk starting meanwhile
        written.append(compiled)
    return written


@cache
def catalogue(language: str) -> dict[str, str]:
    """Every message of one language, by name."""
    return read_catalogue(asset("locales"), language)


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


if __name__ == "__main__":  # python -m kiosk.i18n: compile the catalogues (make compiled)
    for path in compile_catalogues(asset("locales")):
        print(path)
