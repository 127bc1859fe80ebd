"""What the kiosk writes is readable by the kiosk's account alone.

The data dir holds e-mail addresses, password hashes, activation codes and the
candidates' documents. Whatever umask the kiosk was started under, its process takes
``UMASK`` (:func:`private_umask`), its data dir is 0700 and every file in it 0600;
a data dir left too open by an older version or by hand is tightened at start
(:func:`tighten`).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

UMASK = 0o077
FOLDER_MODE = 0o700
FILE_MODE = 0o600

log = logging.getLogger(__name__)


@contextmanager
def private_umask() -> Iterator[None]:
    """The kiosk's umask for the time of the block (the command), the caller's after."""
    previous = os.umask(UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_folder(folder: Path) -> Path:
    """``folder``, made if needed, 0700 (only when it was too open)."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _tighten_one(folder, folder.lstat())
    return folder


def private_file(path: Path) -> Path:
    """``path``, made empty if needed, 0600 (only when it was too open)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if mode & UMASK:
            os.fchmod(descriptor, mode & ~UMASK)
    finally:
        os.close(descriptor)
    return path


def write_durably(folder: Path, name: str, data: bytes) -> Path:
    """``folder / name`` written whole or not at all, 0600: a power cut leaves no half
    file under the final name, and the name itself survives it (the store will list it)."""
    private_folder(folder)
    final = folder / name
    partial = final.with_suffix(".part")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with open(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
    except OSError:
        # A full or failing disk: nothing half-written is left, under either name.
        partial.unlink(missing_ok=True)
        raise
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return final


def tighten(folder: Path) -> None:
    """Make ``folder`` 0700 and everything in it readable by its owner alone: folders
    0700, files 0600 at most. Links are not followed; what cannot be changed is logged."""
    private_folder(folder)
    for root, folders, files in os.walk(folder):
        for name in (*folders, *files):
            path = Path(root) / name
            try:
                _tighten_one(path, path.lstat())
            except OSError as error:
                log.warning("cannot make %s private: %s", path, error.strerror or error)


def private_if_present(path: Path) -> None:
    """``path`` readable by its owner alone when it exists (changed only when too open)."""
    try:
        _tighten_one(path, path.lstat())
    except FileNotFoundError:
        pass
    except OSError as error:  # another account's file: said, not fatal
        log.warning("cannot make %s private: %s", path, error.strerror or error)


def _tighten_one(path: Path, status: os.stat_result) -> None:
    if stat.S_ISLNK(status.st_mode):
        return
    mode = stat.S_IMODE(status.st_mode)
    if mode & UMASK:
        os.chmod(path, mode & ~UMASK)
