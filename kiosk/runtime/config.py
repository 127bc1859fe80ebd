"""Configuration: one TOML file, then ``KIOSK_*`` environment variables, then options.

Each setting has one name. In the file it sits in its table (``[mail] smtp_host``), in
the environment it is ``KIOSK_`` plus the table and the key in capitals
(``KIOSK_MAIL_SMTP_HOST``); top-level settings drop the table (``KIOSK_SESSION``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kiosk.clock import parse_instant
from kiosk.i18n import LANGUAGES, french


class ConfigError(ValueError):
    """A setting that cannot be used, with the name the user wrote it under, in French."""


@dataclass(frozen=True)
class MailConfig:
    """How outgoing mail leaves the kiosk: a local Maildir, or an SMTP server."""

    transport: str = "maildir"  # maildir | smtp
    sender: str = "Inscriptions bac pro <ne-pas-repondre@ac-poitiers.fr>"
    smtp_host: str = "localhost"
    smtp_port: int = 0  # 0: the usual port of the chosen security
    smtp_security: str = "starttls"  # starttls | ssl | none
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 10.0
    smtp_ca_file: str = ""  # trust this CA instead of the system's (private relays)


@dataclass(frozen=True)
class PrintConfig:
    """Where documents are printed: a CUPS queue, or the data dir's print folder."""

    queue: str = ""
    server: str = ""  # a CUPS server other than the system's default, host:port or a socket path


@dataclass(frozen=True)
class SyncConfig:
    """The rectorat's sync service; an empty ``url`` keeps the kiosk on its own."""

    url: str = ""
    token: str = ""  # NAME:TOKEN as issued by « kiosk rectorat kiosk add NAME »
    token_file: str = ""  # or a file holding it, readable by the kiosk alone
    ca_file: str = ""
    interval: float = 30.0
    timeout: float = 10.0


@dataclass(frozen=True)
class Config:
    """Everything the composition root needs to build the kiosk's services."""

    data_dir: Path = field(default_factory=lambda: default_data_dir())
    session: str = "bacpro-poitiers-2020"
    language: str = "fr"
    kiosk_name: str = "borne"
    now: str = ""
    idle_timeout: float = 120.0
    idle_warning: float = 30.0
    purge_interval: float = 60.0
    # Where the staff console writes its CSV exports: a share the exam office reads, say.
    exports: str = ""
    mail: MailConfig = field(default_factory=MailConfig)
    printing: PrintConfig = field(default_factory=PrintConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "kiosk.sqlite3"

    @property
    def maildir_path(self) -> Path:
        return self.data_dir / "maildir"

    @property
    def print_dir(self) -> Path:
        return self.data_dir / "impressions"

    @property
    def exports_dir(self) -> Path:
        return Path(self.exports).expanduser() if self.exports else self.data_dir / "exports"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "kiosk"


def _coerce(value: Any, kind: Any, name: str) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name in ("Path",):
            return Path(value).expanduser()
        if kind_name == "int":
            return int(value)
        if kind_name == "float":
            return float(value)
        if kind_name == "bool":
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "oui", "on")
        return str(value)
    except (TypeError, ValueError) as error:
        key = "cli.config.not_a_number" if kind_name in ("int", "float") else "cli.config.invalid"
        raise ConfigError(french(key, name=name, value=value)) from error


def _apply(obj: Any, values: Mapping[str, Any], where: str, *, environment: bool = False) -> Any:
    """Set ``values`` on ``obj``; errors name each setting as written: ``mail.smtp_port``
    in the file, ``KIOSK_MAIL_SMTP_PORT`` in the environment."""
    changes: dict[str, Any] = {}
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        name = f"{where}{key.upper() if environment else key}"
        if key not in known:
            raise ConfigError(french("cli.config.unknown", name=name))
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(french("cli.config.table", name=name))
            changes[key] = _apply(
                current, value, f"{name}{'_' if environment else '.'}", environment=environment
            )
        else:
            changes[key] = _coerce(value, known[key].type, name)
    return replace(obj, **changes)


def _from_environment(obj: Any, environ: Mapping[str, str], prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in fields(obj):
        current = getattr(obj, f.name)
        name = f"{prefix}{f.name.upper()}"
        if is_dataclass(current):
            nested = _from_environment(current, environ, f"{name}_")
            if nested:
                found[f.name] = nested
        elif name in environ:
            found[f.name] = environ[name]
    return found


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """The configuration from the file, the environment and the command line, in that order."""
    environ = os.environ if environ is None else environ
    config = Config()
    path = path or (Path(environ["KIOSK_CONFIG"]) if environ.get("KIOSK_CONFIG") else None)
    if path is not None:
        try:
            with open(path, "rb") as handle:
                config = _apply(config, tomllib.load(handle), "")
        except OSError as error:
            raise ConfigError(f"{path}: {error.strerror}") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(french("cli.config.unreadable", path=path, detail=error)) from error
        except UnicodeDecodeError as error:  # tomllib reads UTF-8 only
            raise ConfigError(french("cli.config.unreadable", path=path, detail=error)) from error
    config = _apply(
        config, _from_environment(config, environ, "KIOSK_"), "KIOSK_", environment=True
    )
    if overrides:
        config = _apply(config, {k: v for k, v in overrides.items() if v is not None}, "--")
    if config.language not in LANGUAGES:
        raise ConfigError(french("cli.config.invalid", name="language", value=config.language))
    if config.now:
        try:
            parse_instant(config.now)
        except ValueError as error:
            raise ConfigError(french("cli.config.invalid", name="now", value=config.now)) from error
    if config.sync.url and not _web_address(config.sync.url):
        raise ConfigError(french("cli.config.invalid", name="[sync] url", value=config.sync.url))
    if config.mail.transport not in ("maildir", "smtp"):
        raise ConfigError(french("cli.config.transport", value=config.mail.transport))
    if config.mail.smtp_security not in ("starttls", "ssl", "none"):
        raise ConfigError(french("cli.config.security", value=config.mail.smtp_security))
    return config


def _web_address(url: str) -> bool:
    """Whether ``url`` is an http(s) address with a host (and a port, if any, that is one)."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("https", "http") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        return False
