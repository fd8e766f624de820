"""The desktop session bus as the keyring reaches it on Linux."""

from __future__ import annotations


def survive_bus_loss() -> None:
    """GLib's shared session-bus connection (libsecret, keyring's libsecret backend)
    raises SIGTERM in this process when the bus goes away, a desktop session restart
    say: the app would end with edits unsaved. Turned off: the keyring then reports its
    error like any other. Nothing to do where PyGObject or a session bus is missing."""
    try:
        from gi.repository import Gio

        Gio.bus_get_sync(Gio.BusType.SESSION, None).set_exit_on_close(False)
    except Exception:  # no PyGObject (Windows, macOS), no bus: nothing would raise either
        return
