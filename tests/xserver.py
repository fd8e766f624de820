"""A private Xvfb server for tests and tools that need a real X display."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator


def have_xvfb() -> bool:
    return shutil.which("Xvfb") is not None


@contextlib.contextmanager
def xvfb(size: str = "1600x1000x24") -> Iterator[str]:
    """Start Xvfb on a free display number; yields its DISPLAY (":N")."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as handle:
            number = handle.readline().strip()  # Xvfb writes it once it accepts clients
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)
