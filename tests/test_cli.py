"""The command line: a table of commands whose every text comes from the catalogue, and
no traceback for any input, only a French message and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.i18n import LANGUAGES, catalogue, french
from kiosk.rectorat import cli as rectorat_cli
from kiosk.runtime import cli
from kiosk.runtime.commands import ARGPARSE_TEXTS, Command, argparse_text, walk
from kiosk.runtime.groundwork import THREAD_SWITCH_INTERVAL

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = list(walk(cli.commands()))
IDS = [" ".join(path) for path, _ in COMMANDS]
# Placeholders the code fills in an option's help.
HELP_FIELDS = {
    "cli.option.rectorat_db": {"variable": rectorat_cli.DB_ENVIRONMENT},
    "cli.option.public_url": {"variable": "KIOSK_RECTORAT_PUBLIC_URL"},
}


def kiosk(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python kiosk.py ARGS``, as staff run it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "kiosk.py"), *args], cwd=cwd, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def main(capsys, *args: str) -> tuple[int, str, str]:
    """``cli.main(ARGS)`` in this process: its exit code, stdout and stderr."""
    try:
        code = cli.main(list(args))
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def flat(text: str) -> str:
    """``text`` with its lines joined: argparse wraps help at the terminal's width."""
    return " ".join(text.split())


def refused(code: int, err: str) -> None:
    """A refusal: exit code 2, said in French on stderr, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith(("kiosk : ", "utilisation : ")), err


# -- the table ---------------------------------------------------------------------------------


def test_the_table_has_every_command():
    assert {path for path, _ in COMMANDS} == {
        ("run",), ("purge",), ("mailbox",), ("deliver",), ("sessions",), ("sync",),
        ("staff",), ("staff-account",), ("staff-account", "add"), ("staff-account", "list"),
        ("rectorat",), ("rectorat", "serve"), ("rectorat", "kiosk"),
        ("rectorat", "kiosk", "add"), ("rectorat", "kiosk", "revoke"),
        ("rectorat", "kiosk", "list"), ("rectorat", "publish"),
    }  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_every_command_has_a_help_text_in_both_languages(path, command: Command, language):
    assert command.help.startswith("cli.")
    assert catalogue(language).get(command.help, "").strip(), (path, language)


def test_a_command_runs_or_holds_subcommands():
    with pytest.raises(ValueError):
        Command("nothing", "cli.command.run")
    for path, command in COMMANDS:
        assert (command.run is None) == bool(command.subcommands), path


def _parsers(parser: argparse.ArgumentParser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_option_has_a_help_text_from_the_catalogue():
    french_texts = set(catalogue("fr").values()) | {
        french(key, **fields) for key, fields in HELP_FIELDS.items()
    }
    parsers = dict(_parsers(cli.parser()))
    assert set(parsers) == {(), *(path for path, _ in COMMANDS)}
    for path, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help in french_texts, (path, action.option_strings, action.help)


def test_kiosk_help_lists_every_command(capsys):
    code, out, err = main(capsys, "--help")
    assert code == 0 and err == ""
    assert out.startswith("utilisation : kiosk ")
    assert french("cli.description") in flat(out)
    for path, command in COMMANDS:
        if len(path) == 1:
            assert f"{path[0]} {french(command.help)}" in flat(out), path


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_each_command_has_its_help(capsys, path, command: Command):
    code, out, err = main(capsys, *path, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"utilisation : kiosk {' '.join(path)}")
    assert flat(french(command.help)) in flat(out)
    for sub in command.subcommands:
        assert f"{sub.name} {french(sub.help)}" in flat(out)
    assert "show this help" not in out and "usage:" not in out


def test_the_command_is_the_same_from_kiosk_py():
    ran = kiosk("--help")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("utilisation : kiosk ")
    for path, _ in COMMANDS:
        if len(path) == 1:
            assert f"\n    {path[0]} " in ran.stdout


def test_kiosk_rectorat_on_its_own_has_the_same_commands(capsys):
    with pytest.raises(SystemExit) as exit:
        rectorat_cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit.value.code == 0
    assert out.startswith("utilisation : kiosk rectorat ")
    for command in rectorat_cli.COMMANDS:
        assert f"{command.name} {french(command.help)}" in flat(out)


# -- argparse's own texts ----------------------------------------------------------------------


@pytest.mark.parametrize("text", sorted(ARGPARSE_TEXTS))
def test_argparse_texts_come_from_the_catalogue_and_still_fill(text):
    key, unnamed = ARGPARSE_TEXTS[text]
    assert key in catalogue("fr") and key in catalogue("en")
    translated = argparse_text(text)
    assert translated.strip() != text.strip()
    named = dict.fromkeys(re.findall(r"%\((\w+)\)", text), "X")
    filled = translated % (named or (("X",) if unnamed else ()))
    assert "%" not in filled and filled.endswith(text[len(text.rstrip()) :])


def test_argparse_speaks_english_again_after_the_command(capsys):
    main(capsys, "--no-such-option")
    assert vars(argparse)["_"]("usage: ") == "usage: "
    assert argparse.ArgumentParser(prog="p").format_usage() == "usage: p [-h]\n"


# -- refusals: French, exit code 2, no traceback ---------------------------------------------


WRONG_COMMAND_LINES = [
    (["bogus"], "argument COMMANDE : choix non valide : « bogus »"),
    (["--bogus"], "arguments non reconnus : --bogus"),
    (["purge", "--bogus"], "arguments non reconnus : --bogus"),
    (["staff-account"], "arguments obligatoires manquants : ACTION"),
    (["staff-account", "remove"], "choix non valide : « remove »"),
    (["staff-account", "add", "x"], "arguments obligatoires manquants : --role"),
    (["staff-account", "add", "x", "--role", "boss"], "choix non valide : « boss »"),
    (["deliver", "--limit", "x"], "argument --limit : « x » n'est pas un nombre entier"),
    (["sync"], "arguments obligatoires manquants : --once"),
    (["--language", "de"], "choix non valide : « de »"),
    (["--session"], "argument --session : une valeur est attendue"),
    (["rectorat"], "arguments obligatoires manquants : ACTION"),
    (["rectorat", "kiosk", "revoke"], "arguments obligatoires manquants : NOM"),
    (["rectorat", "serve", "--port", "huit"], "« huit » n'est pas un nombre entier"),
]


@pytest.mark.parametrize(
    "args, says", WRONG_COMMAND_LINES, ids=[" ".join(args) for args, _ in WRONG_COMMAND_LINES]
)
def test_a_wrong_command_line_is_refused_in_french(capsys, args, says):
    code, out, err = main(capsys, *args)
    refused(code, err)
    assert out == ""
    assert says in flat(err)
    assert "error:" not in err and "usage:" not in err


def test_a_wrong_command_line_is_refused_in_french_by_the_real_command():
    ran = kiosk("bogus")
    refused(ran.returncode, ran.stderr)
    assert "choix non valide : « bogus »" in ran.stderr


@pytest.fixture
def session_folder(tmp_path) -> Path:
    folder = tmp_path / "session.toml"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "option, says",
    [
        (["--session", "nope"], "Aucune session d'examen ne s'appelle « nope »"),
        (["--session", "FOLDER"], "est un dossier : indiquez le fichier .toml"),
        (["--session", "MISSING"], "Le fichier de session d'examen"),
        (["--config", "MISSING"], "fichier ou dossier introuvable"),
        (["--config", "FOLDER"], "c'est un dossier, et non un fichier"),
    ],
    ids=["unknown-session", "session-folder", "session-missing", "config-missing", "config-folder"],
)
@pytest.mark.parametrize("command", [["purge"], ["run"]], ids=["purge", "run"])
def test_a_session_or_file_that_is_not_there_is_refused_in_french(
    tmp_path, session_folder, option, says, command
):
    name, value = option
    value = {"FOLDER": str(session_folder), "MISSING": str(tmp_path / "nothing.toml")}.get(
        value, value
    )
    ran = kiosk("--data-dir", str(tmp_path / "data"), name, value, *command)
    refused(ran.returncode, ran.stderr)
    assert says in ran.stderr
    assert ran.stdout == ""


def test_a_file_given_as_the_data_folder_is_refused_in_french(tmp_path):
    a_file = tmp_path / "fichier"
    a_file.write_text("", encoding="utf-8")
    ran = kiosk("--data-dir", str(a_file), "purge")
    refused(ran.returncode, ran.stderr)
    assert f"{a_file} : existe déjà, et n'est pas un dossier." in ran.stderr
    ran = kiosk("rectorat", "--data-dir", str(a_file), "kiosk", "list")
    refused(ran.returncode, ran.stderr)
    assert "n'est pas un dossier" in ran.stderr


def test_the_listing_of_sessions_needs_no_session():
    ran = kiosk("--session", "nope", "sessions")
    assert ran.returncode == 0, ran.stderr
    assert "bacpro-poitiers-2020" in ran.stdout.split()


def test_serve_refuses_tls_files_it_cannot_use_in_french_before_starting(capsys, tmp_path):
    data = ["--data-dir", str(tmp_path / "rectorat")]
    missing = tmp_path / "absent.pem"
    code, out, err = main(capsys, "rectorat", *data, "serve", "--tls-cert", str(missing),
                          "--tls-key", str(missing))  # fmt: skip
    assert code == 2 and f"{missing} : fichier ou dossier introuvable" in err
    garbage = tmp_path / "pas-un-certificat.pem"
    garbage.write_text("ceci n'est pas un certificat")
    code, out, err = main(capsys, "rectorat", *data, "serve", "--tls-cert", str(garbage),
                          "--tls-key", str(garbage))  # fmt: skip
    assert code == 2
    assert err.strip() == french(
        "cli.error",
        message=french("cli.rectorat.tls_unusable", cert_file=str(garbage), key_file=str(garbage)),
    )
    assert not (tmp_path / "rectorat").exists()  # refused before anything was made


def test_what_the_rectorat_s_commands_refuse_is_said_in_french(capsys, tmp_path):
    data = ["--data-dir", str(tmp_path / "rectorat")]
    said = {
        ("kiosk", "add", "pas un nom!"): french("cli.rectorat.kiosk_name"),
        ("kiosk", "revoke", "inconnue"): french("cli.rectorat.no_kiosk", name="inconnue"),
    }
    assert main(capsys, "rectorat", *data, "kiosk", "add", "hall-1")[0] == 0
    said[("kiosk", "add", "hall-1")] = french("cli.rectorat.kiosk_has_credential", name="hall-1")
    for command, message in said.items():
        code, out, err = main(capsys, "rectorat", *data, *command)
        refused(code, err)
        assert err.strip() == french("cli.error", message=message)
    for url, key in (
        ("foo://x", "cli.rectorat.store_scheme"),
        ("postgresql://u:p@[::1", "cli.rectorat.store_bad_url"),
        ("postgresql://u:p@localhost:port/x", "cli.rectorat.store_bad_url"),
        ("sqlite://", "cli.rectorat.store_needs_file"),
    ):
        code, out, err = main(capsys, "rectorat", "--db", url, "kiosk", "list")
        refused(code, err)
        lead = french(key, scheme="foo", detail="").split(":")[0].strip()
        assert lead in err, (url, err)


def test_serve_refuses_half_a_tls_pair_in_french(capsys):
    code, out, err = main(capsys, "rectorat", "serve", "--tls-cert", "cert.pem")
    refused(code, err)
    assert french("cli.rectorat.tls_pair") in err


# -- configuration problems: in French, on stderr and in the log; never a traceback ----------


def kiosk_with(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python kiosk.py ARGS`` with ``env`` added to a clean environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "kiosk.py"), *args], cwd=ROOT, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL, check=False, env=environment,
    )  # fmt: skip


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    """Files a configuration may name, each wrong in its own way."""
    made = {
        "broken.toml": "id = [\n",
        "table.toml": "mail = 3\n",
        "unknown.toml": "couleur = 'bleu'\n",
        "language.toml": "language = 'de'\n",
        "session.toml": "title = 'sans dates'\n",
    }
    for name, text in made.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "folder.toml").mkdir()
    return {name: str(tmp_path / name) for name in [*made, "binary.toml", "folder.toml"]}


CONFIGURATION_PROBLEMS = [
    (["--session", "nope"], {}, "Aucune session d'examen ne s'appelle « nope »"),
    (["--session", "FILE:folder.toml"], {}, "est un dossier : indiquez le fichier .toml"),
    (["--session", "FILE:broken.toml"], {}, "n'est pas un fichier de session d'examen lisible"),
    (["--session", "FILE:binary.toml"], {}, "n'est pas un fichier de session d'examen lisible"),
    (["--session", "FILE:session.toml"], {}, "un renseignement de la session d'examen manque"),
    (["--config", "FILE:broken.toml"], {}, "ce n'est pas un fichier TOML lisible"),
    (["--config", "FILE:binary.toml"], {}, "ce n'est pas un fichier TOML lisible"),
    (["--config", "FILE:table.toml"], {}, "mail : une table est attendue"),
    (["--config", "FILE:unknown.toml"], {}, "couleur : ce réglage n'existe pas."),
    (["--config", "FILE:language.toml"], {}, "language : « de » n'est pas une valeur possible."),
    ([], {"KIOSK_IDLE_TIMEOUT": "bientôt"}, "« bientôt » n'est pas un nombre."),
    ([], {"KIOSK_NOW": "hier"}, "now : « hier » n'est pas une valeur possible."),
    (
        [],
        {"KIOSK_SYNC_URL": "rectorat"},
        "[sync] url : « rectorat » n'est pas une valeur possible.",
    ),
    ([], {"KIOSK_MAIL_TRANSPORT": "pigeon"}, "« pigeon » n'est ni maildir ni smtp."),
]


@pytest.mark.parametrize(
    "options, env, says", CONFIGURATION_PROBLEMS, ids=[p[2][:40] for p in CONFIGURATION_PROBLEMS]
)
def test_a_configuration_problem_is_said_in_french_on_stderr_and_in_the_log(
    tmp_path, files, options, env, says
):
    options = [files[o[5:]] if o.startswith("FILE:") else o for o in options]
    data_dir = tmp_path / "data"
    ran = kiosk_with("--data-dir", str(data_dir), *options, "purge", env=env)
    refused(ran.returncode, ran.stderr)
    assert says in ran.stderr
    assert says in (data_dir / "kiosk.log").read_text(encoding="utf-8")


# Whatever is typed on the command line: a French message, exit code 0, 1 or 2, no traceback.
ODD_COMMAND_LINES = [
    ["--data-dir", "/dev/null", "purge"],
    ["--data-dir", "/proc/self/nothing/here", "purge"],
    ["--data-dir", "x" * 5000, "purge"],
    ["--data-dir", "", "sessions"],
    ["--data-dir", "DATA", "--config", "/dev/null", "purge"],
    ["--data-dir", "DATA", "--config", "", "purge"],
    ["--data-dir", "DATA", "--config", "/", "purge"],
    ["--data-dir", "DATA", "--session", "", "purge"],
    ["--data-dir", "DATA", "--session", "/", "purge"],
    ["--data-dir", "DATA", "--session", ".toml", "purge"],
    ["--data-dir", "DATA", "--session", "../../../etc/passwd", "purge"],
    ["--data-dir", "DATA", "--session", "/etc/passwd.toml", "purge"],
    ["--data-dir", "DATA", "--session", "x" * 5000 + ".toml", "purge"],
    ["--data-dir", "DATA", "--session", "\udcff.toml", "purge"],
    ["--data-dir", "DATA/\udcff", "purge"],
    ["--data-dir", "DATA", "deliver", "--limit", "99999999999999999999999"],
    ["--data-dir", "DATA", "deliver", "--limit", "-1"],
    ["--data-dir", "DATA", "deliver", "--limit", "٣"],
    ["--data-dir", "DATA", "mailbox"],
    ["--data-dir", "DATA", "sync"],
    ["--data-dir", "DATA", "staff"],
    ["--data-dir", "DATA", "staff-account", "add", "", "--role", "reception", "--password-stdin"],
    ["--data-dir", "DATA", "staff-account", "add", "x" * 10000, "--role", "x"],
    ["--data-dir", "DATA", "staff-account", "list"],
    ["--language", "de"],
    ["--" + "x" * 1000],
    ["-"],
    ["--data-dir"],
]


@pytest.mark.parametrize("arguments", ODD_COMMAND_LINES, ids=repr)
def test_no_command_line_input_gives_a_traceback(tmp_path, arguments):
    data_dir = str(tmp_path / "data")
    arguments = [a.replace("DATA", data_dir) for a in arguments]
    # The command line as bytes: an argument need not be UTF-8 (os.fsencode gives it back).
    ran = subprocess.run(
        [sys.executable, str(ROOT / "kiosk.py"), *map(os.fsencode, arguments)], cwd=ROOT,
        capture_output=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")},
    )  # fmt: skip
    err = ran.stderr.decode("utf-8", "backslashreplace")
    assert "Traceback" not in err and "erreur inattendue" not in err, err
    assert ran.returncode in (0, 2), err
    if ran.returncode:
        assert err.startswith(("kiosk : ", "kiosk staff : ", "utilisation : ")), err


def test_an_unexpected_error_gives_a_sentence_not_a_traceback(tmp_path, monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "carry_out", broken)
    code, out, err = main(capsys, "--data-dir", str(tmp_path / "data"), "purge")
    assert code == 1
    assert "Traceback" not in err
    assert err.startswith("kiosk : erreur inattendue (RuntimeError)")


def _screen_of(process: subprocess.Popen, master: int, seconds: float) -> str:
    """What ``process`` writes on its terminal during ``seconds``."""
    import select

    shown = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                shown += os.read(master, 65536)
            except OSError:
                break
    return shown.decode("utf-8", "replace")


@pytest.mark.parametrize(
    "options, says",
    [
        (["--session", "nope"], "Aucune session d'examen ne s'appelle « nope »"),
        (["--config", "FILE:table.toml"], "mail : une table est attendue"),
    ],
    ids=["unknown-session", "bad-config"],
)
def test_on_its_screen_a_misconfigured_kiosk_is_out_of_service_and_waits(
    tmp_path, files, options, says
):
    """The launcher on the kiosk's terminal: the screen says only « Borne hors service. »,
    staff read why in the log, no kiosk is started, and the launcher waits (it looks again
    every SLOW_RESTART seconds, as for a damaged store), instead of ending with code 2."""
    import pty

    options = [files[o[5:]] if o.startswith("FILE:") else o for o in options]
    data_dir = tmp_path / "data"
    master, slave = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    launcher = subprocess.Popen(
        [sys.executable, str(ROOT / "kiosk.py"), "--data-dir", str(data_dir), *options],
        cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=environment,
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        log = data_dir / "kiosk.log"
        deadline = time.monotonic() + 20
        screen = ""
        while "Borne hors service" not in (log.read_text("utf-8") if log.exists() else ""):
            assert time.monotonic() < deadline, f"nothing in the log; the screen:\n{screen}"
            screen += _screen_of(launcher, master, 0.2)
        screen += _screen_of(launcher, master, 1.5)
        assert launcher.poll() is None, "the launcher ended instead of waiting"
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text()
        assert children.split() == [], "a kiosk was started"
    finally:
        launcher.terminate()
        launcher.wait(20)
        os.close(master)
    assert "Borne hors service." in screen
    assert says not in screen and "Traceback" not in screen and "kiosk :" not in screen
    text = log.read_text(encoding="utf-8")
    assert f"Borne hors service. {says}" in text or (says in text and "hors service" in text)
    assert text.count("Borne hors service") == 1


# The kiosk's own process, as the launcher starts it, run headless to its first frame.
KIOSK_START = r"""
import argparse, gc, json, sys

collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
from textual.app import App

from kiosk.runtime import cli

seen = {}
run = App.run


def headless(app, **_):
    seen["collections_before_run"] = collections[:]

    async def first_frame(pilot):
        def drawn():
            seen["collecting"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
            seen["switch_interval"] = sys.getswitchinterval()
            pilot.app.exit(0)

        pilot.app.screen.call_after_refresh(drawn)

    return run(app, headless=True, size=(80, 24), auto_pilot=first_frame)


parse_args = argparse.ArgumentParser.parse_args


def command_line_read(parser, *args, **kwargs):
    namespace = parse_args(parser, *args, **kwargs)
    collections.clear()  # the kiosk's start begins: its command line is read
    return namespace


App.run = headless
argparse.ArgumentParser.parse_args = command_line_read
seen["status"] = cli.main(sys.argv[1:])
print(json.dumps(seen))
"""


def test_the_kiosk_starts_without_the_collector_and_collects_once_built(tmp_path):
    """What the kiosk makes before its app is built lives as long as it: no collection
    walks it during the start; it is frozen, and the collector is on at the first frame.
    Its threads take the interpreter's lock in turn every millisecond."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    environment["KIOSK_LAUNCHED"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", KIOSK_START, "--data-dir", str(tmp_path), "--session", "demo"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["status"] == 0
    assert seen["collections_before_run"] == []
    assert seen["collecting"] and seen["frozen"] > 10_000
    # Its frames reach the terminal without waiting 5 ms for the interpreter's lock.
    assert seen["switch_interval"] == pytest.approx(THREAD_SWITCH_INTERVAL)
