"""The journey harness itself: keys reach the window a click brought forward only once the
window system has made it the active one, never the window still behind."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication, QLineEdit, QMainWindow

from tests.ui.conftest import until
from tests.ui.person import Blocked, Person


def _window(qtbot, title: str) -> QMainWindow:
    window = QMainWindow()
    window.setWindowTitle(title)
    window.setCentralWidget(QLineEdit())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_keys_wait_until_the_clicked_window_is_in_front(qtbot, qrun):
    first, second = _window(qtbot, "First"), _window(qtbot, "Second")
    first_field, second_field = first.centralWidget(), second.centralWidget()

    async def scenario() -> None:
        first.activateWindow()
        await until(lambda: QApplication.activeWindow() is first, what="the first window")
        person = Person(first)
        person.click_widget(second_field)  # brings the second window forward, not at once
        with pytest.raises(Blocked, match="'Second' is not in front yet"):
            person.press("x")
        await person.in_front()
        person.press("x")
        assert second_field.text() == "x" and first_field.text() == ""

    qrun(scenario())


def test_a_right_click_opens_the_rows_menu_and_refuses_a_disabled_item(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QListWidget, QMenu

    window = QMainWindow()
    rows = QListWidget()
    rows.addItems(["alpha", "beta"])
    rows.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    window.setCentralWidget(rows)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    picked: list[str] = []
    go, off = QAction("Go", window), QAction("Off", window)
    off.setEnabled(False)
    go.triggered.connect(lambda: picked.append(rows.currentItem().text()))

    def menu(at) -> None:
        shown = QMenu(rows)
        shown.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        shown.addActions([go, off])
        shown.popup(rows.viewport().mapToGlobal(at))

    rows.customContextMenuRequested.connect(menu)
    person = Person(window)
    person.context_menu(rows, "beta", "Go")
    assert picked == ["beta"]  # the right-click selected the row first
    with pytest.raises(Blocked, match="menu item Off is disabled"):
        person.context_menu(rows, "alpha", "Off")
    QApplication.activePopupWidget().close()
