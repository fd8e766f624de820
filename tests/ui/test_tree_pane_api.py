"""The tree pane's public API, which the window and the other panes use instead of its
view: select an identity, and hear about selection and context-menu requests."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer.service.app_model import Selection
from twin_explorer.ui.panes.tree.tree_pane import TreePane


async def _two_devices(hub):
    service = service_for(hub)
    await service.create_device("d1")
    await service.create_module("d1", "m1")
    await service.create_device("d2")
    return service


def test_select_by_identity(qtbot, qrun, local_hub):
    pane = TreePane()
    qtbot.addWidget(pane)
    current: list[object] = []
    set_changes: list[bool] = []
    pane.selectionChanged.connect(current.append)
    pane.selectedRowsChanged.connect(lambda: set_changes.append(True))

    async def scenario():
        service = await _two_devices(local_hub)
        pane.set_service(service)
        await until(lambda: pane.model.rowCount() == 2, what="two devices")
        assert pane.select("d2")
        assert pane.current_row().device_id == "d2" and current[-1].device_id == "d2"
        assert [row.device_id for row in pane.selected_rows()] == ["d2"]
        assert set_changes
        assert not pane.select("nobody")
        assert not pane.select("d1", "m1")  # its device is not expanded: not loaded yet
        pane.view.expand(pane.model.index(0, 0))
        await until(lambda: pane.select("d1", "m1"), what="the module row")
        assert (current[-1].device_id, current[-1].module_id) == ("d1", "m1")
        assert [row.label for row in pane.selected_rows()] == ["d1/m1"]
        await service.aclose()

    qrun(scenario())


def test_context_menu_on_a_row_offers_the_identity_actions(qtbot, qrun, local_hub):
    window = open_window(qtbot)
    tree = window.tree_pane
    requests: list[QPoint] = []
    tree.contextMenuRequested.connect(requests.append)

    async def scenario():
        await window.session.use("Local", await _two_devices(local_hub))
        await until(lambda: tree.model.rowCount() == 2, what="two devices")
        tree.select("d1")
        viewport = tree.view.viewport()
        at = tree.view.visualRect(tree.model.index(0, 0)).center()
        event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, viewport.mapToGlobal(at))
        QApplication.sendEvent(viewport, event)
        assert requests == [viewport.mapToGlobal(at)]
        menus = [m for m in QApplication.topLevelWidgets() if isinstance(m, QMenu)]
        menu = next(m for m in menus if m.isVisible())
        items = {a.text() for a in menu.actions() if a.isEnabled()}
        assert {"&Delete…", "New &Module…", "D&isable Device"} <= items
        menu.close()

    qrun(scenario())


def test_the_pane_sets_the_models_selection_and_answers_its_requests(qtbot, qrun, local_hub):
    selection = Selection()
    pane = TreePane(selection)
    qtbot.addWidget(pane)
    chosen: list[object] = []
    deleted: list[object] = []
    selection.subscribe(chosen.append)
    selection.deleted.subscribe(deleted.append)

    async def scenario():
        pane.set_service(await _two_devices(local_hub))
        await until(lambda: pane.model.rowCount() == 2, what="two devices")
        assert pane.select("d2")
        assert selection.identity == "d2" and chosen[-1].device_id == "d2"
        selection.request("d1")  # e.g. the editor putting the selection back
        assert pane.current_row().device_id == "d1" and selection.identity == "d1"
        pane.identities_deleted([("d2", None)])
        assert deleted == [[("d2", None)]]
        await pane.aclose()

    qrun(scenario())
