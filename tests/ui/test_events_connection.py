"""A saved connection takes its hub's Event Hub-compatible connection string in the real
dialog: a wrong one is said where it was typed and nothing changes; a right one goes to
the keyring (never a file) and is what the Events stream reads for that hub."""

from __future__ import annotations

from tests.connection.keyrings import files_containing
from tests.connection.test_events_profile import EVENTS
from tests.connection.test_profiles import CS, KEY
from tests.ui.hubwindow import open_window
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.service.app_model import AppModel
from twin_explorer.service.session import HubSessionState


def test_the_dialog_keeps_the_events_string_in_the_keyring(qtbot, secret_service_keyring, app_home):
    window = open_window(qtbot)
    connections = window.show_connections()
    editor = connections._edit(None)
    editor.name_edit.setText("prod hub")
    editor.string_edit.setText(CS)
    editor.events_edit.setText("Endpoint=sb://x/;SharedAccessKey=k")
    editor.save_button.click()
    assert "Built-in endpoints" in editor.save_error.text()
    assert "prod hub" not in window.session.profile_names()

    editor.events_edit.setText(EVENTS)
    editor.save_button.click()
    qtbot.waitUntil(lambda: "prod hub" in window.session.profile_names())
    assert ProfileManager().get_events_connection_string("prod hub") == EVENTS
    assert files_containing(app_home, KEY) == []


def test_the_stream_reads_the_profiles_endpoint(secret_service_keyring, app_home):
    profiles = ProfileManager()
    profiles.add("prod hub", CS)
    profiles.set_events_connection_string("prod hub", EVENTS)
    session = HubSessionState(profiles)
    session.name = "prod hub"  # as open() leaves it
    endpoint = AppModel(session=session).events.endpoint_for()
    assert endpoint is not None and endpoint.connection_string == EVENTS
    assert endpoint.address is None  # Azure: the endpoint the string names
