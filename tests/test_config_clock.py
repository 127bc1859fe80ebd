"""The one clock (KIOSK_NOW, frozen, advance) and the configuration's three layers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.clock import Clock, parse_instant
from kiosk.runtime.config import Config, ConfigError, load_config


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- clock ------------------------------------------------------------------------------


def test_parse_instant_reads_local_paris_time_and_explicit_offsets():
    assert parse_instant("2019-11-27T19:00:00") == utc(2019, 11, 27, 18, 0)  # winter: UTC+1
    assert parse_instant("2019-07-01T12:00:00") == utc(2019, 7, 1, 10, 0)  # summer: UTC+2
    assert parse_instant(" 2019-11-27T19:00:00+00:00 ") == utc(2019, 11, 27, 19, 0)
    assert parse_instant("2019-11-27T19:00:00").tzinfo == UTC


def test_clock_from_setting_is_paris_time_and_runs_on():
    clock = Clock.from_setting("2019-11-27T18:59:00")
    first = clock.now()
    assert first.tzinfo is not None
    assert timedelta(0) <= first - utc(2019, 11, 27, 17, 59) < timedelta(seconds=5)
    time.sleep(0.01)
    assert clock.now() > first


def test_clock_without_setting_is_the_system_clock():
    for value in (None, ""):
        assert abs(Clock.from_setting(value).now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_frozen_clock_moves_only_when_told():
    clock = Clock(parse_instant("2019-11-10T10:00:00"), frozen=True)
    start = clock.now()
    assert start == utc(2019, 11, 10, 9, 0)
    time.sleep(0.01)
    assert clock.now() == start
    clock.advance(timedelta(hours=48))
    assert clock.now() == start + timedelta(hours=48)
    clock.advance(timedelta(seconds=-1))
    assert clock.now() == start + timedelta(hours=48, seconds=-1)
    clock.set(utc(2020, 1, 1))
    assert clock.now() == utc(2020, 1, 1)


def test_a_running_clock_advances_from_where_it_stands():
    clock = Clock(utc(2019, 11, 10, 9, 0))
    clock.advance(timedelta(days=1))
    assert timedelta(0) <= clock.now() - utc(2019, 11, 11, 9, 0) < timedelta(seconds=5)


# -- configuration ----------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        'session = "demo"\n'
        'data_dir = "/srv/kiosk"\n'
        "idle_timeout = 90\n"
        "[mail]\n"
        'transport = "smtp"\n'
        'smtp_host = "relay.ac-poitiers.fr"\n'
        "smtp_port = 587\n",
        encoding="utf-8",
    )
    return path


def test_defaults_without_file_or_environment():
    config = load_config(environ={})
    assert config.session == "bacpro-poitiers-2020"
    assert config.mail.transport == "maildir"
    assert config.now == ""
    assert config.database_path == config.data_dir / "kiosk.sqlite3"


def test_the_file_sets_values(config_file):
    config = load_config(config_file, environ={})
    assert config.session == "demo"
    assert config.data_dir == Path("/srv/kiosk")
    assert config.idle_timeout == 90.0 and isinstance(config.idle_timeout, float)
    assert (config.mail.transport, config.mail.smtp_host, config.mail.smtp_port) == (
        "smtp",
        "relay.ac-poitiers.fr",
        587,
    )
    assert config.mail.sender == Config().mail.sender


def test_the_environment_overrides_the_file_and_options_override_both(config_file):
    environ = {
        "KIOSK_SESSION": "bacpro-poitiers-2020",
        "KIOSK_MAIL_SMTP_HOST": "smtp.exemple.fr",
        "KIOSK_MAIL_SMTP_PORT": "2525",
        "KIOSK_IDLE_TIMEOUT": "45.5",
    }
    config = load_config(config_file, environ=environ)
    assert config.session == "bacpro-poitiers-2020"
    assert config.mail.smtp_host == "smtp.exemple.fr"
    assert config.mail.smtp_port == 2525
    assert config.mail.transport == "smtp"  # from the file, untouched
    assert config.idle_timeout == 45.5

    config = load_config(
        config_file,
        environ=environ,
        overrides={"session": "demo", "data_dir": "/tmp/k", "language": None},
    )
    assert config.session == "demo"
    assert config.data_dir == Path("/tmp/k")
    assert config.language == "fr"
    assert config.mail.smtp_host == "smtp.exemple.fr"


def test_kiosk_config_names_the_file(config_file):
    assert load_config(environ={"KIOSK_CONFIG": str(config_file)}).session == "demo"


def test_kiosk_now_sets_the_clock():
    config = load_config(environ={"KIOSK_NOW": "2019-11-27T18:59:00"})
    assert config.now == "2019-11-27T18:59:00"
    assert Clock.from_setting(config.now).now() - utc(2019, 11, 27, 17, 59) < timedelta(seconds=5)


@pytest.mark.parametrize(
    "environ, name",
    [
        ({"KIOSK_MAIL_SMTP_PORT": "vingt-cinq"}, "KIOSK_MAIL_SMTP_PORT"),
        ({"KIOSK_IDLE_TIMEOUT": "deux minutes"}, "KIOSK_IDLE_TIMEOUT"),
        ({"KIOSK_MAIL_SMTP_TIMEOUT": ""}, "KIOSK_MAIL_SMTP_TIMEOUT"),
        ({"KIOSK_MAIL_TRANSPORT": "pigeon"}, "transport"),
        ({"KIOSK_MAIL_SMTP_SECURITY": "tls"}, "smtp_security"),
    ],
)
def test_bad_environment_values_name_the_setting(environ, name):
    with pytest.raises(ConfigError, match=name):
        load_config(environ=environ)


@pytest.mark.parametrize(
    "text, name",
    [
        ("idle_timeout = 'jamais'\n", "idle_timeout"),
        ("[mail]\nsmtp_port = 'x'\n", "mail.smtp_port"),
        ("sesion = 'demo'\n", "sesion"),
        ("[mail]\nsmtp_hots = 'x'\n", "mail.smtp_hots"),
        ("mail = 'smtp'\n", "mail"),
        ("session = \n", "kiosk.toml"),
    ],
)
def test_bad_file_values_name_the_setting(tmp_path, text, name):
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=name):
        load_config(path, environ={})


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="absent.toml"):
        load_config(tmp_path / "absent.toml", environ={})
