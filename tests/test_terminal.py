"""The kiosk in a real terminal: ``python kiosk.py`` in a tmux pane of 80×24.

What a person at the keyboard of a public kiosk can do, done for real: control keys,
function keys, escape sequences, and the signals that reach the kiosk's process. The
kiosk must keep running and answering, come back when it is killed, and leave only
through the staff exit (F12 and a staff password).

Each test starts its own tmux server on a private socket (``tmux -L``), so that nothing
here touches another tmux, and kills it at the end.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.requirements import need_program
from tests.support.terminal import ROOT, SIGN_UP, Pane, field, state

STAFF = "accueil"
STAFF_PASSWORD = "horloge cuivrée 73 marée"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data dir with a staff account, made as staff make one."""
    need_program("tmux", "tmux")
    folder = tmp_path_factory.mktemp("terminal") / "data"
    done = subprocess.run(
        [
            sys.executable,
            "kiosk.py",
            "--data-dir",
            str(folder),
            "staff-account",
            "add",
            STAFF,
            "--role",
            "reception",
            "--password-stdin",
        ],
        input=STAFF_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture
def pane(data_dir):
    """A private tmux server for one pane of 80×24, killed at the end with what runs in it."""
    tmux = need_program("tmux", "tmux")
    pane = Pane(tmux, f"kiosk-test-{uuid.uuid4().hex[:12]}", data_dir)
    yield pane
    pane.stop()


@pytest.fixture
def kiosk(pane) -> Pane:
    """``python kiosk.py`` in the pane, on its welcome screen."""
    pane.start()
    pane.wait_for_welcome()
    pane.wait_for_kiosk()
    return pane


# -- keys ----------------------------------------------------------------------------------

ESCAPE_SEQUENCES = [
    "\x1b[2J",  # erase the screen
    "\x1b]52;c;aGk=\x07",  # OSC 52: set the clipboard
    "\x1b]0;title\x07",  # set the window title
    "\x1b[?1049l\x1b[?25h",  # leave the alternate screen, show the cursor
    "\x1b[200~pasted\x1b[201~",  # a whole bracketed paste
    "\x1b[<0;10;10M\x1b[<0;10;10m",  # a mouse click
    "\x1bc",  # full reset
    "\x1b[" + "9" * 60,  # an endless parameter list
    "\x1b[O\x1b[I",  # focus out, focus in
]


def test_control_function_and_escape_keys_leave_it_running_and_answering(kiosk):
    pid = kiosk.kiosk_pid()
    kiosk.keys("C-c", "C-z", "C-\\", "C-q", "C-d", "M-F4")
    kiosk.keys(*(f"F{n}" for n in range(1, 12)))
    kiosk.keys(*(f"C-{letter}" for letter in "abcdefghijklmnopqrstuvwxyz"))
    for sequence in ESCAPE_SEQUENCES:
        kiosk.raw(sequence)
    kiosk.keys("Escape", "C-c", "C-z", "C-\\")
    time.sleep(0.5)  # let the storm be read

    assert not kiosk.dead()
    assert kiosk.kiosk_pid() == pid, "the kiosk process died (and was started again)"
    assert state(pid) != "T", "the kiosk process is stopped"
    kiosk.answers()
    assert kiosk.kiosk_pid() == pid


def test_a_bracketed_paste_left_open_does_not_take_the_keyboard_away(kiosk):
    """Textual's parser waits for the end of a paste forever; the kiosk's
    (screens/keyboard.py) ends one left open after half a second of silence."""
    kiosk.raw("\x1b[200~")
    time.sleep(1.0)
    kiosk.keys("c")
    kiosk.wait_for(lambda s: SIGN_UP in s, "sign-up screen after « c »", timeout=3)


def test_a_bracketed_paste_left_open_then_typed_into_gives_the_keyboard_back(kiosk):
    """Keys typed at once after an open paste are part of it; after a pause, keys again."""
    kiosk.raw("\x1b[200~abc")
    time.sleep(0.8)
    kiosk.keys("c")
    kiosk.wait_for(lambda s: SIGN_UP in s, "sign-up screen after « c »", timeout=3)
    kiosk.answers()


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of ``pid``, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


@pytest.mark.parametrize("bracketed", [True, False], ids=["bracketed", "unbracketed"])
def test_a_1_mb_paste_is_answered_at_once_in_bounded_memory(kiosk, tmp_path, bracketed):
    """A megabyte pasted into « Nom de naissance » — bracketed, as a terminal pastes when the
    program asks for it, or as bare text — then Escape: the field shows what it can hold
    and says why, the Escape behind the megabyte is answered within 2 s, and the kiosk
    stays under 100 MB."""
    pid = kiosk.kiosk_pid()
    kiosk.keys("c")
    kiosk.wait_for(lambda s: SIGN_UP in s, "sign-up screen after « c »", timeout=5)
    kiosk.wait_for_focus(SIGN_UP, ("Prénom(s)",))
    pasted = tmp_path / "paste.txt"
    pasted.write_text("Dupont" * (1024 * 1024 // 6))
    kiosk.tmux("load-buffer", "-b", "big", str(pasted))
    started = time.monotonic()
    kiosk.tmux("paste-buffer", *(["-p"] if bracketed else []), "-d", "-b", "big", "-t", "kiosk")
    said = "texte collé a été coupé" if bracketed else "Ce champ est plein"
    kiosk.wait_for(
        lambda s: said in s and field(s, SIGN_UP).startswith("Dupont"), "the paste, cut", 10
    )
    kiosk.keys("Escape")
    kiosk.wait_for_welcome(timeout=10)
    answered = time.monotonic() - started
    memory = _memory(pid)
    print(f"1 MB paste ({'bracketed' if bracketed else 'unbracketed'}): answered in "
          f"{answered:.2f} s; RSS {memory['VmRSS'] / 1024:.1f} MB, "
          f"peak {memory['VmHWM'] / 1024:.1f} MB")  # fmt: skip
    assert answered < 2
    assert memory["VmHWM"] < 100 * 1024
    assert kiosk.kiosk_pid() == pid
    kiosk.answers()


# -- signals ---------------------------------------------------------------------------------


def test_interrupt_stop_and_quit_signals_leave_it_running(kiosk):
    pid, launcher = kiosk.kiosk_pid(), kiosk.pane_pid()
    for name in ("SIGINT", "SIGTSTP", "SIGQUIT"):  # SIGHUP: see the next test
        for target in (pid, launcher):
            os.kill(target, getattr(signal, name))
        time.sleep(0.3)
        assert state(pid) not in ("gone", "T", "Z"), f"after {name} the kiosk is {state(pid)}"
        assert state(launcher) not in ("gone", "T", "Z"), (
            f"after {name} the launcher is {state(launcher)}"
        )
        assert kiosk.kiosk_pid() == pid, f"after {name} the kiosk was started again"
    kiosk.answers()
    assert kiosk.kiosk_pid() == pid and not kiosk.dead()


def test_a_hangup_ends_the_kiosk_and_the_launcher_brings_it_back(kiosk):
    """SIGHUP is « the terminal is gone »: screens/app.py lets it end the kiosk on purpose
    (IGNORED_SIGNALS leaves it out). Sent to the kiosk process alone, the launcher is still
    there and starts a new one. (Sent to the launcher, it ends both, by design too.)"""
    pid = kiosk.kiosk_pid()
    os.kill(pid, signal.SIGHUP)
    new = kiosk.wait_for_kiosk(other_than=pid, timeout=8)
    kiosk.wait_for_welcome(timeout=8)
    assert new != pid and not kiosk.dead()
    kiosk.answers()


def test_a_killed_kiosk_is_started_again_by_the_launcher(kiosk):
    pid = kiosk.kiosk_pid()
    kiosk.keys("c")
    kiosk.wait_for(lambda s: SIGN_UP in s, "sign-up screen after « c »", timeout=5)
    os.kill(pid, signal.SIGKILL)

    started = time.monotonic()
    new = kiosk.wait_for_kiosk(other_than=pid, timeout=8)
    kiosk.wait_for_welcome(timeout=8)
    assert time.monotonic() - started < 8
    assert new != pid and state(pid) == "gone"
    assert not kiosk.dead()
    kiosk.answers()


def _ends(pid: int, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while state(pid) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    return state(pid) in ("gone", "Z")


def test_the_first_kiosk_never_outlives_its_launcher(kiosk):
    """The first kiosk is forked from the launcher: killed (nothing it can catch), the
    launcher takes it along all the same."""
    pid, launcher = kiosk.kiosk_pid(), kiosk.pane_pid()
    os.kill(launcher, signal.SIGKILL)
    assert _ends(pid), f"the kiosk is {state(pid)} after its launcher was killed"


def test_a_restarted_kiosk_never_outlives_its_launcher(kiosk):
    """The next kiosks are started afresh: the same holds for them."""
    first = kiosk.kiosk_pid()
    os.kill(first, signal.SIGKILL)
    new = kiosk.wait_for_kiosk(other_than=first, timeout=8)
    kiosk.wait_for_welcome(timeout=8)
    os.kill(kiosk.pane_pid(), signal.SIGKILL)
    assert _ends(new), f"the kiosk is {state(new)} after its launcher was killed"


def test_textual_variables_in_the_environment_change_nothing(pane):
    pane.start({"TEXTUAL_ALLOW_SIGNALS": "1", "TEXTUAL": "devtools,debug", "TEXTUAL_DRIVER": "x"})
    pane.wait_for_welcome()
    pid = pane.wait_for_kiosk()
    pane.keys("C-c", "C-\\", "C-z")
    time.sleep(0.5)
    assert pane.kiosk_pid() == pid, "a key ended the kiosk process"
    assert state(pid) != "T", "the kiosk process is stopped"
    pane.answers()
    assert pane.kiosk_pid() == pid


def test_the_running_kiosk_keeps_its_files_private_under_umask_022(pane):
    """The launcher and its kiosk, started under umask 022 (tmux's server inherits the
    umask of the test, the pane's program tmux's): the data dir 0700, every file 0600,
    the store's -wal and -shm included, while the kiosk runs."""
    previous = os.umask(0o022)
    try:
        pane.start()
    finally:
        os.umask(previous)
    pane.wait_for_welcome()
    pane.wait_for_kiosk()
    seen: dict[str, int] = {}  # every file seen while the kiosk runs, and its mode
    deadline = time.monotonic() + 10
    # The kiosk opens its store after the welcome; the -wal and -shm come and go with
    # its connections: looked at until they have been seen.
    while not {"kiosk.sqlite3-wal", "kiosk.sqlite3-shm", "kiosk.log"} <= seen.keys():
        assert time.monotonic() < deadline, f"the kiosk did not open its store: {seen}"
        for path in [pane.data_dir, *pane.data_dir.rglob("*")]:
            try:
                seen[path.name] = stat.S_IMODE(path.lstat().st_mode) | (
                    0o40000 if path.is_dir() else 0
                )
            except FileNotFoundError:
                continue
        time.sleep(0.02)
    pane.answers()
    too_open = {
        name: f"{mode & 0o777:o}"
        for name, mode in seen.items()
        if mode & 0o777 != (0o700 if mode & 0o40000 else 0o600)
    }
    assert too_open == {}


# -- the staff exit -------------------------------------------------------------------------


def test_f12_and_a_staff_password_leave_kiosk_mode(kiosk):
    name, password = "Identifiant", "Mot de passe"
    kiosk.keys("F12")
    kiosk.wait_for(lambda s: "Sortie du mode borne" in s, "staff exit screen", timeout=5)
    kiosk.wait_for_focus(name, (password,))
    kiosk.text(STAFF)
    kiosk.wait_for(lambda s: field(s, name) == STAFF, "the staff name typed", timeout=5)
    kiosk.keys("Tab")
    kiosk.wait_for_focus(password, (name,))
    kiosk.text("pas le bon mot de passe")
    kiosk.wait_for(
        lambda s: field(s, password) == "•" * 23, "the password typed, masked", timeout=5
    )
    assert field(kiosk.screen(), name) == STAFF
    kiosk.keys("Enter")
    kiosk.wait_for(lambda s: "Identifiant ou mot de passe incorrect." in s, "refusal", timeout=10)
    assert not kiosk.dead()

    # The password field has the focus still: empty it and type the right one.
    kiosk.wait_for_focus(password, (name,))
    kiosk.keys("C-u", "C-k")
    kiosk.text(STAFF_PASSWORD)
    kiosk.wait_for(
        lambda s: field(s, password) == "•" * len(STAFF_PASSWORD), "the password typed", timeout=5
    )
    kiosk.keys("Enter")
    deadline = time.monotonic() + 10
    while not kiosk.dead():
        assert time.monotonic() < deadline, f"the launcher did not end:\n{kiosk.screen()}"
        time.sleep(0.05)
    # The launcher has returned: it does only after a kiosk exit with code 0 (STAFF_EXIT),
    # any other code is a restart. tmux, with no client attached, may reap it late: its exit
    # status is checked when tmux has it.
    launcher = kiosk.started[0]
    assert state(launcher) in ("Z", "gone")
    assert "kiosk mode left by staff member accueil" in (kiosk.data_dir / "kiosk.log").read_text()
    status = kiosk.tmux(
        "display-message", "-p", "-t", "kiosk", "#{pane_dead_status}#{pane_dead_signal}"
    ).strip()
    assert status in ("", "0"), status
    assert kiosk.kiosk_pid() is None
