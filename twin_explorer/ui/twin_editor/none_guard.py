"""Work around PySide6 6.12 dropping a reference to ``None`` on every void call (Python < 3.12).

With shiboken6 6.12.0 on CPython 3.11, each call of a C++ method that returns nothing
(``setPlainText``, ``setFormat``, ``setExtraSelections``, …) hands back ``None`` without
the reference it owes, so ``None``'s count falls by one per call. ``None`` is immortal
from Python 3.12 on, but on 3.11 the count reaches zero after some tens of thousands of
calls and the interpreter aborts ("none_dealloc: deallocating None"). A syntax
highlighter makes several such calls per line, so opening a large twin a few times was
enough. Until a fixed PySide6 is required, give ``None`` a reserve of references it can
never use up. Applied only where the leak is measured, once per process.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject

RESERVE = 1 << 48
_PROBE_CALLS = 64
_state = {"checked": False, "applied": False}


def leaks_none() -> bool:
    """Whether a void PySide6 call takes a reference from ``None`` here. Other threads
    move the count too, so a few probes are taken; a false alarm costs nothing."""
    probe = QObject()
    for _ in range(3):
        before = sys.getrefcount(None)
        for _ in range(_PROBE_CALLS):
            probe.setObjectName("probe")
        if before - sys.getrefcount(None) >= _PROBE_CALLS // 2:
            return True
    return False


def protect_none() -> bool:
    """Give ``None`` its reserve if this PySide6 needs it; returns whether it was applied."""
    if not _state["checked"]:
        _state["checked"] = True
        if (
            sys.implementation.name == "cpython"
            and sys.version_info < (3, 12)  # immortal from 3.12: counts are not kept
            and leaks_none()
        ):
            ctypes.c_ssize_t.from_address(id(None)).value += RESERVE
            _state["applied"] = True
    return _state["applied"]
