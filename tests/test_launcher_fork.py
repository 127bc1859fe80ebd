"""The first kiosk, forked from the ``kiosk`` command: it waits for the launcher's word,
runs as the launched kiosk, and its end (or its abandon) comes back to the launcher.

Each test forks this very process: the forked side leaves with ``os._exit`` whatever
happens, so that it never goes back into pytest.
"""

from __future__ import annotations

import os

from kiosk.runtime.launcher import CHILD_VARIABLE, Forked, launched, wait_for_go


def _as_the_kiosk(body) -> None:
    """In the forked process: run ``body`` and leave with its code (99 on an error)."""
    code = 99
    try:
        code = body()
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else 98
    finally:
        os._exit(code)


def test_the_forked_kiosk_waits_for_go_then_runs_launched_and_its_code_comes_back():
    assert not launched()
    first = Forked()
    if first.in_kiosk:

        def kiosk() -> int:
            wait_for_go()
            return 7 if launched() else 1

        _as_the_kiosk(kiosk)
    assert not launched() and CHILD_VARIABLE not in os.environ  # the launcher's unchanged
    assert first.go() == 7
    assert first.settled


def test_an_abandoned_forked_kiosk_ends_before_it_runs(tmp_path):
    ran = tmp_path / "ran"
    first = Forked()
    if first.in_kiosk:

        def kiosk() -> int:
            wait_for_go()
            ran.touch()  # past the wait: what an abandoned kiosk must never reach
            return 7

        _as_the_kiosk(kiosk)
    first.abandon()
    assert first.settled
    assert not ran.exists()
    try:
        os.waitpid(first.pid, os.WNOHANG)
    except ChildProcessError:
        pass  # reaped by abandon: no zombie left behind
    else:
        raise AssertionError("the abandoned kiosk was left unreaped")
