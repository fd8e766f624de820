"""Runtime hook used instead of PyInstaller's ``pyi_rth_pyside6`` (see twin-explorer.spec).

PyInstaller's hook imports PySide6.QtCore at every start to register an embedded
qt.conf. That costs about 0.2 s, also for ``twin-explorer hub``, which the app starts as
its local hub and which never loads Qt. This hook does the same set-up, but loads Qt
only when the command line can open Qt: not for the headless subcommands.
"""


def _twin_explorer_qt_rthook():
    import os
    import sys

    from _pyi_rth_utils import qt as qt_rth_utils

    headless = {"hub", "connections", "simulate"}  # twin_explorer.cli's Qt-free commands

    qt_rth_utils.ensure_single_qt_bindings_package("PySide6")
    if sys.platform.startswith("win"):
        qt_dir = os.path.join(sys._MEIPASS, "PySide6")
    else:
        qt_dir = os.path.join(sys._MEIPASS, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt_dir, "plugins")
    positional = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    if positional and positional[0] in headless:
        return
    qt_rth_utils.create_embedded_qt_conf("PySide6", qt_dir)


_twin_explorer_qt_rthook()
del _twin_explorer_qt_rthook
