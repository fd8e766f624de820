"""A person at the window: journey tests reach the app only through what is on screen.

Every step finds its control by what a person reads (a button's text, a menu path, a
field's label or placeholder, a row's text), refuses controls that are hidden, disabled
or behind a modal dialog, and then clicks or types with real input events (``QTest``), so
shortcuts, focus and modality behave as they do for a person. What the window shows is
read back as text. Conditions are awaited (``until``), never slept on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QContextMenuEvent, QKeySequence, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QTabBar,
    QTextEdit,
    QWidget,
)

from tests.ui.conftest import until
from twin_explorer.ui.chrome.shortcuts_dialog import plain as _plain  # a control's text as shown


def _showing(widget: QWidget) -> bool:
    return (
        widget.isVisible()
        and widget.width() > 0
        and widget.height() > 0
        and not _behind_a_tab(widget)
    )


def _behind_a_tab(widget: QWidget) -> bool:
    """In a dock that another dock's tab covers: Qt still calls it visible (it is moved
    out of the window), a person does not see it."""
    parent: QWidget | None = widget
    while parent is not None:
        if isinstance(parent, QDockWidget):
            return parent.visibleRegion().isEmpty()
        parent = parent.parentWidget()
    return False


def _open_windows() -> list[QWidget]:
    return [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.isWindow()]


class Blocked(AssertionError):
    """The control exists but a person could not use it now."""


class Person:
    """One person using the app's windows (the main window and whatever it opens)."""

    def __init__(self, window: QWidget) -> None:
        self.window = window
        self._front: QWidget | None = None  # the window last asked to come to the front

    def _bring_to_front(self, widget: QWidget) -> None:
        """A click on a window behind another one brings it to the front, keys then go there.

        Activation is the window system's answer, delivered when the loop next runs (the
        harness never runs the loop inside the caller's task); ``press`` checks it came."""
        window = widget.window()
        if QApplication.activeWindow() is not window:
            window.raise_()
            window.activateWindow()
            self._front = window  # until it is activated (its first activeChanged)
            window.windowHandle().activeChanged.connect(
                self._arrived, Qt.ConnectionType.SingleShotConnection
            )

    def _arrived(self) -> None:
        self._front = None

    async def in_front(self, within: float = 5.0) -> None:
        """Wait until the window last clicked is the active one (for keys right after)."""
        await until(lambda: self._front is None, within, "the window in front")

    # -- finding what is on screen -------------------------------------------------------

    def _scope(self, within: QWidget | None) -> list[QWidget]:
        if within is not None:
            return [within]
        modal = QApplication.activeModalWidget()
        return [modal] if modal is not None else _open_windows()

    def _reachable(self, widget: QWidget) -> None:
        if not _showing(widget):
            raise Blocked(f"{widget!r} is not visible")
        if not widget.isEnabled():
            raise Blocked(f"{_describe(widget)} is disabled")
        modal = QApplication.activeModalWidget()
        if modal is not None and widget.window() is not modal and not modal.isAncestorOf(widget):
            raise Blocked(f"{_describe(widget)} is behind the modal {modal.windowTitle()!r}")

    def button(self, text: str, within: QWidget | None = None) -> QAbstractButton:
        """A visible button (push, tool, check, radio) by its text or, for icon buttons, tooltip."""
        want = _plain(text)
        found = [
            b
            for scope in self._scope(within)
            for b in scope.findChildren(QAbstractButton)
            if _showing(b) and want in (_plain(b.text()), _plain(b.toolTip().split("(")[0]))
        ]
        if not found:
            raise AssertionError(f"no visible button {text!r}; visible: {self.button_texts()}")
        return found[0]

    def button_texts(self) -> list[str]:
        return [
            _plain(b.text()) or _plain(b.toolTip())
            for scope in self._scope(None)
            for b in scope.findChildren(QAbstractButton)
            if _showing(b)
        ]

    def field(self, label: str, within: QWidget | None = None) -> QWidget:
        """An input by its label's text (buddy or the label just before it) or placeholder."""
        want = _plain(label).rstrip(":")
        for scope in self._scope(within):
            for edit in scope.findChildren(QLineEdit) + scope.findChildren(QPlainTextEdit):
                if _showing(edit) and _plain(edit.placeholderText()).startswith(want):
                    return edit
            for lab in scope.findChildren(QLabel):
                if _showing(lab) and _plain(lab.text()).rstrip(":") == want:
                    buddy = lab.buddy() or _next_input(lab)
                    if buddy is not None:
                        return buddy
        for scope in self._scope(within):  # a heading "Name: what it holds" above its input
            for lab in scope.findChildren(QLabel):
                if _showing(lab) and _untagged(lab.text()).startswith(want + ":"):
                    buddy = lab.buddy() or _next_input(lab)
                    if buddy is not None:
                        return buddy
        raise AssertionError(f"no visible field labelled {label!r}")

    def window_titled(self, title: str) -> QWidget:
        """An open window (dialog) whose title starts with ``title``."""
        for window in _open_windows():
            if window.windowTitle().startswith(title):
                return window
        titles = [w.windowTitle() for w in _open_windows()]
        raise AssertionError(f"no open window {title!r}; open: {titles}")

    def pane(self, title: str) -> QWidget:
        """A visible dock pane by its title, to read or act within it."""
        for dock in self.window.findChildren(QDockWidget):
            if _showing(dock) and _plain(dock.windowTitle()) == _plain(title):
                return dock
        raise AssertionError(f"no visible pane {title!r}")

    def sees(self, text: str, within: QWidget | None = None) -> bool:
        """Whether ``text`` appears anywhere the person can read in the open windows."""
        return any(text in shown for shown in self.texts(within))

    def texts(self, within: QWidget | None = None) -> Iterable[str]:
        scopes = [within] if within is not None else _open_windows()
        for scope in scopes:
            yield scope.windowTitle()
            yield from _texts_of(scope)

    # -- acting ----------------------------------------------------------------------------

    def click(self, text: str, within: QWidget | None = None) -> None:
        target = self.button(text, within)
        self._reachable(target)
        QTest.mouseClick(target, Qt.MouseButton.LeftButton)

    def click_widget(self, widget: QWidget, pos: QPoint | None = None) -> None:
        self._reachable(widget)
        self._bring_to_front(widget)
        at = pos if pos is not None else widget.rect().center()
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)

    def type_into(self, label: str, text: str, *, replace: bool = True) -> QWidget:
        target = self.field(label)
        self.click_widget(target)
        if replace:
            QTest.keySequence(target, QKeySequence.StandardKey.SelectAll)
            QTest.keyClick(target, Qt.Key.Key_Delete)
        for number, line in enumerate(text.split("\n")):  # a line break is the Enter key
            if number:
                QTest.keyClick(target, Qt.Key.Key_Return)
            QTest.keyClicks(target, line)
        return target

    def type_here(self, text: str) -> None:
        """Type where the keyboard focus is (a table cell's editor a button opened)."""
        target = QApplication.focusWidget()
        assert target is not None, "nothing has the keyboard focus"
        self._reachable(target)
        QTest.keyClicks(target, text)

    def press(self, keys: str | QKeySequence.StandardKey, to: QWidget | None = None) -> None:
        """A shortcut or key, sent where the keyboard focus is (or to ``to``)."""
        modal = QApplication.activeModalWidget()
        if to is not None:
            target = to
        elif modal is not None:  # keys go to the dialog in front, as on a real desktop
            target = modal.focusWidget() or modal
        else:
            front = self._front
            if front is not None and front.isVisible():
                # The keys would go to the window behind, and its shortcuts would not match.
                raise Blocked(f"{front.windowTitle()!r} is not in front yet: await in_front()")
            target = QApplication.focusWidget() or self.window
        QTest.keySequence(target, QKeySequence(keys))

    def menu(self, *path: str) -> None:
        """Open the menu bar's menus along ``path`` and click the last item, as with a mouse."""
        bar = self.window.menuBar()  # type: ignore[attr-defined]
        modal = QApplication.activeModalWidget()
        if modal is not None and modal is not self.window:
            raise Blocked(f"the menu bar is behind the modal {modal.windowTitle()!r}")
        actions = bar.actions()
        menu: QMenu | None = None
        for depth, name in enumerate(path):
            action = _action_named(actions, name)
            if not action.isVisible() or not action.isEnabled():
                raise Blocked(f"menu item {' → '.join(path[: depth + 1])} is disabled or hidden")
            if menu is None:
                bar.setActiveAction(action)
                menu = action.menu()
            elif action.menu() is not None:
                sub = action.menu()
                _hover(menu, menu.actionGeometry(action).center())
                menu.setActiveAction(action)
                sub.popup(menu.mapToGlobal(menu.actionGeometry(action).topRight()))
                menu = sub
            else:
                before = set(_open_windows())
                QTest.mouseClick(
                    menu,
                    Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier,
                    menu.actionGeometry(action).center(),
                )
                # The closed menu hands the keyboard back to the window, unless the item
                # opened a window: that one is in front, as a desktop puts a new window.
                opened = [w for w in _open_windows() if w not in before and w is not menu]
                self._bring_to_front(opened[-1] if opened else self.window)
                return
            actions = menu.actions()
        raise AssertionError(f"{' → '.join(path)} is a menu, not an item")

    def menu_items(self, *path: str) -> list[str]:
        actions = self.window.menuBar().actions()  # type: ignore[attr-defined]
        for name in path:
            actions = _action_named(actions, name).menu().actions()
        return [_plain(a.text()) for a in actions if a.isVisible() and not a.isSeparator()]

    def tab(self, text: str, within: QWidget | None = None) -> None:
        for scope in self._scope(within):
            for bar in scope.findChildren(QTabBar):
                for i in range(bar.count()):
                    if _showing(bar) and _plain(bar.tabText(i)).startswith(_plain(text)):
                        self.click_widget(bar, bar.tabRect(i).center())
                        return
        raise AssertionError(f"no visible tab {text!r}")

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` in the combo box labelled ``label`` with the keyboard."""
        combo = self.field(label)
        assert isinstance(combo, QComboBox), f"{label!r} is not a drop-down"
        index = combo.findText(option, Qt.MatchFlag.MatchStartsWith)
        assert index >= 0, f"{option!r} is not offered in {label!r}"
        self._reachable(combo)
        self._bring_to_front(combo)
        combo.setFocus(Qt.FocusReason.TabFocusReason)  # tabbed to, then the arrow keys
        QTest.keyClick(combo, Qt.Key.Key_Home)
        for _ in range(index):
            QTest.keyClick(combo, Qt.Key.Key_Down)
        assert combo.currentIndex() == index, f"could not choose {option!r} in {label!r}"

    # -- item views ----------------------------------------------------------------------

    def row(self, view: QAbstractItemView, text: str) -> QModelIndex:
        """The first loaded row showing ``text`` in column 0 (children of expanded rows too)."""
        model = view.model()
        pending = [QModelIndex()]
        while pending:
            parent = pending.pop(0)
            for r in range(model.rowCount(parent)):
                index = model.index(r, 0, parent)
                if model.data(index) == text:
                    return index
                if model.rowCount(index):
                    pending.append(index)
        raise AssertionError(f"no row {text!r} in {view.objectName() or view!r}")

    def click_row(
        self, view: QAbstractItemView, text: str, *, double: bool = False, add: bool = False
    ) -> None:
        """Click a row; ``add`` holds Ctrl, adding it to the rows already selected."""
        index = self.row(view, text)
        view.scrollTo(index)
        center = view.visualRect(index).center()
        self._reachable(view.viewport())
        keys = Qt.KeyboardModifier.ControlModifier if add else Qt.KeyboardModifier.NoModifier
        if double:
            QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, keys, center)
        else:
            QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, keys, center)

    def right_click_row(self, view: QAbstractItemView, text: str) -> None:
        """Right-click a row: the press makes it current, the release asks for its
        context menu (a real mouse's context menu event, at the row)."""
        index = self.row(view, text)
        view.scrollTo(index)
        center = view.visualRect(index).center()
        viewport = view.viewport()
        self._reachable(viewport)
        QTest.mouseClick(
            viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, center
        )
        # QTest's clicks make no context menu event: send the one a desktop sends.
        event = QContextMenuEvent(
            QContextMenuEvent.Reason.Mouse, center, viewport.mapToGlobal(center)
        )
        QApplication.sendEvent(viewport, event)

    def popup_items(self) -> list[str]:
        """The items of the open context menu, as shown (disabled ones too)."""
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu), "no context menu is open"
        return [_plain(a.text()) for a in menu.actions() if a.isVisible() and not a.isSeparator()]

    def popup(self, *path: str) -> None:
        """Click the item ``path`` names in the open context menu (submenus first)."""
        menu = QApplication.activePopupWidget()
        if not isinstance(menu, QMenu):
            raise AssertionError("no context menu is open")
        actions = menu.actions()
        for depth, name in enumerate(path):
            action = _action_named(actions, name)
            if not action.isVisible() or not action.isEnabled():
                raise Blocked(f"menu item {' → '.join(path[: depth + 1])} is disabled or hidden")
            if action.menu() is not None and depth < len(path) - 1:
                menu.setActiveAction(action)
                menu = action.menu()
                actions = menu.actions()
                continue
            at = menu.actionGeometry(action).center()
            QTest.mouseClick(menu, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
            self._bring_to_front(self.window)  # the closed menu hands the keyboard back
            return
        raise AssertionError(f"{' → '.join(path)} names no menu item")

    def context_menu(self, view: QAbstractItemView, text: str, *path: str) -> None:
        """Right-click the row showing ``text`` (which selects it) and click the item
        ``path`` names in the menu that opens there."""
        self.right_click_row(view, text)
        if not isinstance(QApplication.activePopupWidget(), QMenu):
            raise AssertionError(f"right-clicking {text!r} opened no menu")
        self.popup(*path)

    def highlighted(self, view: QAbstractItemView) -> list[str]:
        """The texts of the rows shown as selected in ``view`` (column 0)."""
        return [index.data() for index in view.selectionModel().selectedRows(0)]

    async def wait_to_see(self, text: str, within: float = 15.0) -> None:
        await until(lambda: self.sees(text), within, f"the window to show {text!r}")


def _hover(widget: QWidget, at: QPoint) -> None:
    """The mouse moves over ``at``: the event delivered directly. Not ``QTest.mouseMove``:
    that runs Qt's event loop inside the caller, and a scenario is a task, so every other
    task's step due meanwhile would be refused by asyncio and never run again."""
    local = QPointF(at)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        local,
        QPointF(widget.mapToGlobal(at)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def _describe(widget: QWidget) -> str:
    text = getattr(widget, "text", lambda: "")()
    return repr(_plain(text)) if text else widget.objectName() or type(widget).__name__


def _action_named(actions: list[QAction], name: str) -> QAction:
    want = _plain(name)
    for action in actions:
        if _plain(action.text()).split("\t")[0] == want:
            return action
    names = [_plain(a.text()) for a in actions if not a.isSeparator()]
    raise AssertionError(f"no menu item {name!r}; there are {names}")


def _untagged(text: str) -> str:
    """A label's text as read: without rich-text tags."""
    return _plain(re.sub(r"<[^>]+>", "", text))


def _next_input(label: QLabel) -> QWidget | None:
    """The input placed beside ``label`` when no buddy is set: a form layout's field
    (the first widget of a field that is a row of several), or the next widget in the
    row or column that holds the label; layouts nested in the label's widget count."""
    parent = label.parentWidget()
    top = parent.layout() if parent is not None else None
    layout = _layout_holding(top, label) if top is not None else None
    if isinstance(layout, QFormLayout):
        row, _role = layout.getWidgetPosition(label)
        item = layout.itemAt(row, QFormLayout.ItemRole.FieldRole) if row >= 0 else None
        return _first_widget(item) if item is not None else None
    if isinstance(layout, QBoxLayout):
        for i in range(layout.indexOf(label) + 1, layout.count()):
            widget = layout.itemAt(i).widget()
            if widget is not None:
                return widget
    return None


def _first_widget(item) -> QWidget | None:
    if item.widget() is not None:
        return item.widget()
    inner = item.layout()
    if inner is None:
        return None
    for i in range(inner.count()):
        found = _first_widget(inner.itemAt(i))
        if found is not None:
            return found
    return None


def _layout_holding(layout, label: QLabel):
    """The layout (``layout`` or one nested in it) that holds ``label`` itself."""
    if layout.indexOf(label) >= 0:
        return layout
    for i in range(layout.count()):
        inner = layout.itemAt(i).layout()
        if inner is not None:
            found = _layout_holding(inner, label)
            if found is not None:
                return found
    return None


def _texts_of(scope: QWidget) -> Iterable[str]:
    for w in scope.findChildren(QWidget):
        if not _showing(w):
            continue
        if isinstance(w, QLabel | QAbstractButton | QLineEdit):
            yield w.text()
        elif isinstance(w, QPlainTextEdit | QTextEdit):
            yield w.toPlainText()
        elif isinstance(w, QComboBox):
            yield w.currentText()
        elif isinstance(w, QTabBar):
            yield from (w.tabText(i) for i in range(w.count()))
        elif isinstance(w, QAbstractItemView) and w.model() is not None:
            yield from _view_texts(w)


def _columns(model, parent: QModelIndex) -> int:
    try:
        return model.columnCount(parent)
    except TypeError:  # list models keep columnCount private: one column
        return 1


def _view_texts(view: QAbstractItemView) -> Iterable[str]:
    model = view.model()
    pending = [QModelIndex()]
    while pending:
        parent = pending.pop()
        for r in range(min(model.rowCount(parent), 500)):
            for c in range(_columns(model, parent)):
                value = model.data(model.index(r, c, parent))
                if value is not None:
                    yield str(value)
            child = model.index(r, 0, parent)
            if model.rowCount(child):
                pending.append(child)


def _columns(model, parent: QModelIndex) -> int:
    try:
        return model.columnCount(parent)
    except TypeError:  # a QListWidget's model keeps columnCount private: one column
        return 1
