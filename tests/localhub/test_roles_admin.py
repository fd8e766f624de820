"""``/_localhub/roles`` through the app's client (:class:`HubRoles`): list, assign and
remove the local hub's data-plane role assignments, guarded like the other admin routes;
an assignment made here lets an Entra ID token in at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from azure.iot.hub import IoTHubRegistryManager

from tests.localhub.test_entra import client_credential, token_manager
from twin_explorer.connection.hub_roles import HubRoles, HubRolesError
from twin_explorer.localhub.core.entra import TEST_CLIENT_NAME
from twin_explorer.localhub.core.roles import ROLES
from twin_explorer.localhub.runtime.server import HubServer


@pytest_asyncio.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubServer]:
    async with HubServer(tmp_path / "hub", rest_port=0, mqtt_port=0) as server:
        yield server


def _client(hub: HubServer, policy: str = "iothubowner") -> HubRoles:
    return HubRoles(hub.service_connection_string(policy), str(hub.certificates.ca_cert))


async def test_assign_list_and_remove(hub: HubServer) -> None:
    roles = _client(hub)
    table = await roles.list()
    assert (table.assignments, table.roles) == ([], list(ROLES))

    table = await roles.assign("test-client", "data reader")
    assert [(a.principal_name, a.role) for a in table.assignments] == [
        (TEST_CLIENT_NAME, "IoT Hub Data Reader")
    ]
    # The token of the principal assigned here reads the registry at once.
    info = hub.ready_info()
    manager: IoTHubRegistryManager = await token_manager(info, client_credential(info))
    assert await asyncio.to_thread(manager.get_devices) == []

    table = await roles.remove(table.assignments[0].principal_id, "IoT Hub Data Reader")
    assert table.assignments == []
    assert hub.core.access.roles.all() == []


async def test_bad_input_and_missing_rights_are_refused_with_reasons(hub: HubServer) -> None:
    roles = _client(hub)
    with pytest.raises(HubRolesError, match="Owner"):
        await roles.assign("test-client", "Owner")
    with pytest.raises(HubRolesError, match="not an object id"):
        await roles.assign("someone", "IoT Hub Data Reader")
    with pytest.raises(HubRolesError, match="does not have the role"):
        await roles.remove("test-client", "IoT Hub Data Reader")
    with pytest.raises(HubRolesError, match=r"(?i)unauthorized|right|permission"):
        await _client(hub, "registryRead").assign("test-client", "IoT Hub Data Reader")
    assert hub.core.access.roles.all() == []
    assert (await _client(hub, "registryRead").list()).assignments == []
