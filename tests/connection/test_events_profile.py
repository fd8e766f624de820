"""A connection keeps its hub's Event Hub-compatible connection string in the keyring
beside the service one, never in the profile file; it follows renames and removal."""

from __future__ import annotations

import pytest

from tests.connection.keyrings import files_containing
from tests.connection.test_profiles import CS, KEY
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.connection.secrets import SERVICE_NAME
from twin_explorer.connection.strings import ConnectionStringError

EVENTS = (
    f"Endpoint=sb://ihsuprod.servicebus.windows.net/;SharedAccessKeyName=service;"
    f"SharedAccessKey={KEY};EntityPath=prod-hub"
)


def test_kept_in_the_keyring_renamed_and_removed_with_the_connection(memory_keyring, app_home):
    manager = ProfileManager()
    manager.add("Prod", CS)
    assert manager.get_events_connection_string("Prod") is None
    manager.set_events_connection_string("Prod", EVENTS)
    assert manager.get_events_connection_string("Prod") == EVENTS
    assert not files_containing(app_home, KEY)  # only in the keyring
    manager.rename("Prod", "Production")
    assert manager.get_events_connection_string("Production") == EVENTS
    manager.remove("Production")
    assert not [k for k in memory_keyring.passwords if k[0] == SERVICE_NAME]


@pytest.mark.parametrize("text", [CS, "Endpoint=sb://x/;SharedAccessKey=k", "nonsense"])
def test_only_event_hub_strings_are_taken(memory_keyring, text):
    manager = ProfileManager()
    manager.add("Prod", CS)
    with pytest.raises(ConnectionStringError, match="Built-in endpoints"):
        manager.set_events_connection_string("Prod", text)
    assert manager.get_events_connection_string("Prod") is None
