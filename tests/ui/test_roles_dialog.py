"""Hub → Role Assignments… as a component against a running local hub: a person picks a
principal and a role, assigns it, sees it listed, removes it; a principal the hub does
not know gets the hub's reason in the dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.editor_fixtures import hub, hub_tls, window
from tests.ui.test_patch_log import running_hub
from twin_explorer.localhub.core.entra import TEST_CLIENT_NAME
from twin_explorer.service.local_hub import LocalHubInfo
from twin_explorer.service.session import LOCAL_HUB
from twin_explorer.ui.chrome.roles_dialog import RolesDialog

__all__ = ["hub", "hub_tls", "window"]  # fixtures


def _rows(dialog: RolesDialog) -> list[tuple[str, str]]:
    table = dialog.table
    return [(table.item(i, 0).text(), table.item(i, 2).text()) for i in range(table.rowCount())]


def test_assign_and_remove_a_role(qtbot, qrun, tmp_path):
    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            service = service_for(server, sdk_retries=False)
            dialog = RolesDialog(service.hub_roles())
            qtbot.addWidget(dialog)
            dialog.show()
            await until(lambda: dialog.role.count() > 0, what="the roles listed")
            assert _rows(dialog) == [] and not dialog.remove_button.isEnabled()

            dialog.principal.setCurrentText("test-client")
            dialog.role.setCurrentText("IoT Hub Twin Contributor")
            QTest.mouseClick(dialog.assign_button, Qt.MouseButton.LeftButton)
            await until(lambda: _rows(dialog) == [(TEST_CLIENT_NAME, "IoT Hub Twin Contributor")])
            assert "Assigned IoT Hub Twin Contributor" in dialog.status.text()
            assert [a.role for a in server.core.access.roles.all()] == ["IoT Hub Twin Contributor"]

            dialog.principal.setCurrentText("somebody")
            QTest.mouseClick(dialog.assign_button, Qt.MouseButton.LeftButton)
            await until(lambda: "not an object id" in dialog.status.text())
            assert len(_rows(dialog)) == 1

            dialog.table.selectRow(0)
            assert dialog.remove_button.isEnabled()
            QTest.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
            await until(lambda: _rows(dialog) == [], what="the assignment removed")
            assert server.core.access.roles.all() == []
            await service.aclose()

    qrun(scenario())


def test_the_hub_menu_opens_it_for_the_local_hub(window, hub, qrun):
    async def scenario() -> None:
        assert window.roles_action in window.menus["Hub"].actions()
        assert not window.roles_action.isEnabled()  # no hub yet
        window.session.local_info = LocalHubInfo.from_json(hub.ready_info())
        await window.session.use(LOCAL_HUB, service_for(hub))
        await until(window.roles_action.isEnabled, what="Role Assignments enabled")
        window.roles_action.trigger()
        dialog = window.findChild(RolesDialog)
        assert dialog is not None and dialog.isVisible()
        await until(lambda: dialog.role.count() > 0, what="the roles listed")
        assert dialog.status.text() == ""

    qrun(scenario())
