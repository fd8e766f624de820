"""Hub connections through the real dialog: validate, test, save to the keyring, pick."""

from __future__ import annotations

import shutil

import keyring

from tests.connection.keyrings import RefusingKeyring, files_containing
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer.service.local_hub import default_data_dir


def _trust_as_local(hub) -> None:
    """Make the fixture hub's CA the one the app trusts for loopback hubs."""
    tls = default_data_dir() / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    shutil.copy(hub.ca_cert, tls / "ca.pem")


def test_add_test_save_and_connect(qtbot, qrun, local_hub, secret_service_keyring, app_home):
    _trust_as_local(local_hub)
    window = open_window(qtbot)
    key = local_hub.service_connection_string.split("SharedAccessKey=")[1].split(";")[0]

    async def scenario():
        connections = window.show_connections()
        editor = connections._edit(None)
        editor.name_edit.setText("lab hub")
        editor.string_edit.setText("HostName=nohub;SharedAccessKey=abc")
        assert not editor.save_button.isEnabled()
        assert editor.string_error.isVisible() and editor.string_error.text()
        assert key not in editor.string_error.text()

        editor.string_edit.setText(local_hub.service_connection_string)
        assert editor.save_button.isEnabled()
        assert "policy iothubowner" in editor.string_info.text()
        editor.test_button.click()
        await until(lambda: editor.test_result.text().startswith("Connected"), what="test ok")

        editor.save_button.click()
        await until(lambda: connections.list.count() == 2, what="the saved connection")
        assert secret_service_keyring.get_password("twin-explorer", "lab hub")
        assert files_containing(app_home, key) == []

        connections.list.setCurrentRow(1)
        assert connections.selected_name() == "lab hub"
        connections.connect_button.click()
        await until(lambda: window.session.name == "lab hub", what="the switch")
        await until(lambda: "lab hub" in window.hub_status.text(), what="the status bar")
        await until(lambda: window.connection_status.text() == "● reachable")
        await until(lambda: not window.tree_pane.model.loading)

    qrun(scenario())


def test_refusing_keyring_offers_this_session_only(qtbot, qrun, local_hub, app_home):
    _trust_as_local(local_hub)
    previous = keyring.get_keyring()
    keyring.set_keyring(RefusingKeyring())
    try:
        window = open_window(qtbot)

        async def scenario():
            connections = window.show_connections()
            editor = connections._edit(None)
            editor.name_edit.setText("temp")
            editor.string_edit.setText(local_hub.service_connection_string)
            editor.save_button.click()
            await until(lambda: editor.session_only_button.isVisible(), what="the offer")
            assert "Nothing was saved" in editor.save_error.text()
            # What the user typed is still there.
            assert editor.string_edit.text() == local_hub.service_connection_string
            assert not (app_home / "config" / "connections.json").exists() or (
                "temp" not in (app_home / "config" / "connections.json").read_text()
            )
            editor.session_only_button.click()
            await until(lambda: connections.list.count() == 2)
            assert "this session only" in connections.list.item(1).text()

        qrun(scenario())
    finally:
        keyring.set_keyring(previous)


def test_an_entra_connection_is_listed_edited_and_removed_as_one(qtbot, qrun, app_home):
    from twin_explorer.ui.chrome.entra_dialog import EntraConnectionEditor

    window = open_window(qtbot)
    profiles = window.session.profiles
    profiles.add_entra(
        "contoso", "contoso.azure-devices.net", {"credential": "device_code", "tenant_id": "t1"}
    )

    async def scenario():
        connections = window.show_connections()
        texts = [connections.list.item(row).text() for row in range(connections.list.count())]
        assert "contoso — contoso.azure-devices.net (Entra ID)" in texts
        connections.list.setCurrentRow(1)
        editor = connections._edit(connections.selected_name())
        assert isinstance(editor, EntraConnectionEditor)
        assert editor.host_edit.text() == "contoso.azure-devices.net"
        assert editor.credential_box.currentData() == "device_code"
        assert editor.tenant_edit.text() == "t1"
        assert editor.account_label.text() == "Not signed in yet."
        editor.name_edit.setText("contoso prod")
        editor.save_button.click()
        await until(lambda: connections.selected_name() == "contoso prod", what="the rename")
        kept = profiles.get("contoso prod").entra
        assert kept == {"credential": "device_code", "tenant_id": "t1"}
        editor.reject()

    qrun(scenario())
