"""The kiosk in a real terminal, for the tests: ``python kiosk.py`` in a tmux pane.

:class:`Pane` is one pane of 80×24 on a private tmux server (``tmux -L``): what it shows,
keys to type in it, the launcher and kiosk processes in it. :func:`field` reads an input
off a captured screen; :func:`state` is a process's state.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WELCOME = ("Créer mon compte", "Activer mon compte", "Me connecter")
SIGN_UP = "Nom de naissance"  # a field of « Créer mon compte », the screen behind the « c » key
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def background_at(line: str, column: int) -> str:
    """The SGR background in force at ``column`` of a line captured with its escapes."""
    background, at = "", 0
    for token in re.split(r"(\x1b\[[0-9;:]*m)", line):
        if not token.startswith("\x1b["):
            at += len(token)
            if at > column:
                return background
            continue
        codes = token[2:-1].split(";")
        while codes:
            code = codes.pop(0)
            if code in ("", "0", "49"):
                background = ""
            elif code in ("38", "48"):
                arguments = codes[:2] if codes[:1] == ["5"] else codes[:4]
                del codes[: len(arguments)]
                if code == "48":
                    background = ";".join(arguments)
    return background


def welcome_shown(screen: str) -> bool:
    return all(text in screen for text in WELCOME) and SIGN_UP not in screen


class Pane:
    """The kiosk's tmux pane: what it shows, keys to type in it, its processes."""

    def __init__(self, tmux: str, socket: str, data_dir: Path) -> None:
        self.tmux_program = tmux
        self.socket = socket
        self.data_dir = data_dir
        self.config = data_dir.parent / f"{socket}.conf"
        self.config.write_text(
            "set -g remain-on-exit on\n"  # a pane whose program ended stays, marked dead
            "set -g status off\n"  # the whole 80×24 is the kiosk's
        )

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [self.tmux_program, "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    started: list[int]

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "TEXTUAL", "TMUX"))
        }
        env.update(extra_env or {})
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "kiosk",
            "-x",
            "80",
            "-y",
            "24",
            "-c",
            str(ROOT),
            # Several arguments: tmux runs the program itself, no shell in between.
            sys.executable,
            "kiosk.py",
            "--data-dir",
            str(self.data_dir),
            "--session",
            "demo",
            env=env,
        )
        self.started = [self.pane_pid()]
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def stop(self) -> None:
        """Kill the tmux server; then make sure the launcher and its kiosk went with it."""
        pids = list(getattr(self, "started", []))
        if pids:
            pids += [p for p in [self.kiosk_pid()] if p is not None] if not self.dead() else []
        subprocess.run(
            [self.tmux_program, "-L", self.socket, "kill-server"], capture_output=True, timeout=10
        )
        deadline = time.monotonic() + 3
        while any(state(p) not in ("gone", "Z") for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            if state(pid) not in ("gone", "Z"):
                os.kill(pid, signal.SIGKILL)
        if getattr(self, "socket_path", None) is not None:
            self.socket_path.unlink(missing_ok=True)

    # -- what it shows ----------------------------------------------------------------

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "kiosk")

    def wait_for(self, shown, what: str, timeout: float = 10.0) -> str:
        """Poll the pane until ``shown(screen)`` holds; fail with the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if shown(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout} s, still no {what}; the pane shows:\n{screen}"
                )
            time.sleep(0.05)

    def wait_for_welcome(self, timeout: float = 10.0) -> str:
        return self.wait_for(welcome_shown, "welcome screen", timeout)

    # -- what one types -----------------------------------------------------------------

    def keys(self, *keys: str) -> None:
        """Keys by tmux's names (C-c, M-F4, F1, Escape…), one send each, as typed."""
        for key in keys:
            self.tmux("send-keys", "-t", "kiosk", key)

    def text(self, text: str) -> None:
        self.tmux("send-keys", "-t", "kiosk", "-l", text)

    def background(self, label: str) -> str:
        """The background colour of the input beside ``label`` (near its right end), as
        the terminal draws it."""
        for line in self.tmux("capture-pane", "-e", "-p", "-t", "kiosk").splitlines():
            if _SGR.sub("", line).strip().startswith(label):
                return background_at(line, 70)
        return ""

    def wait_for_focus(self, label: str, others: tuple[str, ...], timeout: float = 10.0) -> None:
        """Until the input beside ``label`` is drawn unlike all the others: it has the focus.

        Keys typed before that would go to the field that had it: Textual moves the focus
        when the Tab has gone through the widgets, and keys sent at tmux's speed overtake it.
        """
        self.wait_for(
            lambda _: self.background(label) not in ("", *(self.background(o) for o in others)),
            f"focus on « {label} »",
            timeout,
        )

    def raw(self, data: str) -> None:
        """Bytes into the terminal's input, exactly: escape sequences as a program would
        send them."""
        self.tmux("send-keys", "-t", "kiosk", "-H", *(f"{b:02x}" for b in data.encode()))

    def back_to_welcome(self) -> str:
        """Escape, one at a time, until the welcome is back."""
        deadline = time.monotonic() + 10
        while not welcome_shown(self.screen()):
            assert time.monotonic() < deadline, f"no way back to the welcome:\n{self.screen()}"
            self.keys("Escape")
            time.sleep(0.3)
        return self.screen()

    def answers(self) -> None:
        """From the welcome, « c » opens « Créer mon compte »; Escape comes back."""
        self.back_to_welcome()
        self.keys("c")
        self.wait_for(lambda s: SIGN_UP in s, "sign-up screen after « c »", timeout=5)
        self.back_to_welcome()

    # -- its processes --------------------------------------------------------------------

    def pane_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "kiosk", "#{pane_pid}").strip())

    def dead(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "kiosk", "#{pane_dead}").strip() == "1"

    def kiosk_pid(self) -> int | None:
        """The kiosk itself: the launcher's child (the first is forked from it, the next
        ones started afresh; there is one at a time)."""
        launcher = self.pane_pid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == launcher:
                return int(entry.name)
        return None

    def wait_for_kiosk(self, other_than: int | None = None, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid = self.kiosk_pid()
            if pid is not None and pid != other_than:
                return pid
            assert time.monotonic() < deadline, "the launcher started no kiosk process"
            time.sleep(0.05)


def field(screen: str, label: str) -> str:
    """What the input beside ``label`` shows."""
    for line in screen.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label) :].strip()
    return ""


def state(pid: int) -> str:
    """R, S, T (stopped)… or « gone »."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
