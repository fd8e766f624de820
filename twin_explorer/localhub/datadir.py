"""The hub's data folder: private to its owner.

The folder holds every key the hub has (policy and device keys in ``hub.db``, the CA and
server keys in ``tls/``), so on POSIX it is 0700 and everything in it 0600 (folders
0700), for a new folder and for one an older version left readable (fixed at every
start). On Windows the folder lives in the user's profile, whose ACLs already keep other
users out; chmod there only toggles the read-only bit, so nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
POSIX = os.name == "posix"


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
