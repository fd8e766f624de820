from __future__ import annotations

from importlib import metadata

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QWidget

from twin_explorer.ui.main_window import MENU_TITLES, MainWindow


def _window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_window_has_three_panes_menus_and_status(qtbot):
    window = _window(qtbot)
    assert window.windowTitle().startswith("Twin Explorer")
    for name in ("deviceTree", "twinEditor", "patchLog"):
        pane = window.findChild(QWidget, name)
        assert pane is not None and pane.isVisible(), name
    titles = [action.text() for action in window.menuBar().actions()]
    assert titles == list(MENU_TITLES)
    assert window.statusBar().isVisible()
    assert window.findChild(QLabel, "hubStatus").text()


def test_view_menu_hides_and_restores_panes(qtbot):
    window = _window(qtbot)
    toggle = next(a for a in window.menus["View"].actions() if a.objectName() == "toggle_patchLog")
    toggle.setChecked(False)
    assert not window.log_pane.isVisible()
    window.reset_layout()
    assert window.log_pane.isVisible()


def test_about_lists_real_versions(qtbot):
    window = _window(qtbot)
    dialog = window.show_about()
    qtbot.waitUntil(dialog.isVisible)
    labels = dialog.version_labels
    assert labels["Qt"].text() == qVersion()
    assert labels["PySide6"].text() == PySide6.__version__
    assert labels["azure-iot-hub"].text() == metadata.version("azure-iot-hub")
    assert labels["azure-iot-device"].text() == metadata.version("azure-iot-device")
    assert labels["Python"].text().count(".") == 2
    dialog.reject()
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_geometry_and_splitters_survive_a_restart(qtbot):
    first = _window(qtbot)
    first.resize(720, 520)
    first.main_splitter.setSizes([250, 750])
    first.resizeDocks([first.log_pane], [150], Qt.Orientation.Vertical)
    QApplication.processEvents()
    assert first.main_splitter.sizes()[0] < first.main_splitter.sizes()[1] / 2
    saved_main = first.main_splitter.sizes()
    saved_log = first.log_pane.height()
    first.close()

    second = _window(qtbot)
    assert (second.width(), second.height()) == (720, 520)
    assert second.main_splitter.sizes() == saved_main
    assert second.log_pane.height() == saved_log


def test_first_start_uses_a_sensible_default_size(qtbot):
    window = _window(qtbot)
    screen = window.screen().availableGeometry()
    assert window.width() <= screen.width() and window.height() <= screen.height()
    assert window.width() >= min(1000, screen.width() * 0.8)
    assert all(size > 0 for size in window.main_splitter.sizes())
