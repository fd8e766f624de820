"""The hub's data folder: private to its owner, and used by one hub at a time.

The folder holds every key the hub has (policy and device keys in ``hub.db``, the CA and
server keys in ``tls/``), so on POSIX it is 0700 and everything in it 0600 (folders
0700), for a new folder and for one an older version left readable (fixed at every
start). On Windows the folder lives in the user's profile, whose ACLs already keep other
users out; chmod there only toggles the read-only bit, so nothing is changed.

:class:`DataDirLock` holds an OS lock on ``hub.lock`` for the life of the hub, so a
second hub on the same folder (``twin-explorer hub --demo`` while the app runs its own)
refuses to start instead of writing into the first one's database. The lock file says
who holds it (pid and command line), for the second hub's message. The OS drops the lock
when the process dies, however it dies, so a stale lock never blocks a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import IO, Any

LOCK_NAME = "hub.lock"
DIR_MODE = 0o700
FILE_MODE = 0o600
_COMMAND_CHARS = 300
# Windows locks byte ranges, and a locked range cannot be read by others: lock one byte
# far past the owner text so a second hub can still read who holds the folder.
_WINDOWS_LOCK_OFFSET = 1 << 20

POSIX = os.name == "posix"


class DataDirInUse(RuntimeError):
    """Another process holds the data folder's lock; the message names it."""

    def __init__(self, data_dir: Path, owner: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.owner = owner
        pid = owner.get("pid")
        command = owner.get("command")
        who = "another local hub"
        if pid:
            who += f" (process {pid}" + (f": {command}" if command else "") + ")"
        super().__init__(
            f"The data folder {data_dir} is in use by {who}. Stop that hub first, or give "
            "this one another folder with --data-dir."
        )


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` if needed; on POSIX make it and every folder in it 0700 and
    every file in it 0600. Symbolic links are left alone (chmod would follow them)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if not POSIX:
        return  # the profile's ACLs guard it (see the module docstring)
    _chmod(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _chmod(Path(root, name), DIR_MODE)
        for name in files:
            _chmod(Path(root, name), FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError):  # a temp file may vanish meanwhile
        if path.is_symlink():
            return
        if path.stat().st_mode & 0o7777 != mode:
            os.chmod(path, mode)


def create_private(path: Path) -> None:
    """Create ``path`` as an empty 0600 file unless it exists (SQLite then gives its
    ``-wal`` and ``-shm`` files the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


class DataDirLock:
    """An exclusive OS lock on ``<data_dir>/hub.lock``; :meth:`acquire` raises
    :class:`DataDirInUse` when another process (or another hub in this one) holds it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        if self._file is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        handle = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            if not _try_lock(handle):
                raise DataDirInUse(self.data_dir, _read_owner(handle))
            # Only the holder writes, and only after locking: opening never truncates.
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(_owner()))
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._file = handle

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
            handle.flush()
        handle.close()  # closing the descriptor drops the lock


def _owner() -> dict[str, Any]:
    command = shlex.join(getattr(sys, "orig_argv", sys.argv))
    if len(command) > _COMMAND_CHARS:
        command = command[: _COMMAND_CHARS - 1] + "…"
    return {"pid": os.getpid(), "command": command}


def _read_owner(handle: IO[str]) -> dict[str, Any]:
    """Who holds the lock, as far as its file says (it may be mid-write: then nothing)."""
    try:
        handle.seek(0)
        doc = json.loads(handle.read(4096) or "{}")
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


if POSIX:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        # flock, not fcntl/lockf: its lock belongs to the open file, so a second hub in
        # the same process is refused too.
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

else:
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        handle.seek(_WINDOWS_LOCK_OFFSET)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            handle.seek(0)
        return True
