"""Which C2D endpoint the app uses for the hub the window is on: the local hub's AMQP port
and CA from its ready line, a saved connection's key from the profile store (port 5671,
as IoT Hub's), an Entra ID session's credential; never a key in ``repr``."""

from __future__ import annotations

import pytest

from tests.hubfixtures import service_for
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.connection.strings import parse
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.c2d.endpoint import AMQPS_PORT, EndpointError, session_endpoint
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubInfo
from twin_explorer.service.session import LOCAL_HUB, HubSessionState


async def test_no_hub_no_endpoint(tmp_path) -> None:
    assert session_endpoint(HubSessionState(ProfileManager(tmp_path))) is None


async def test_a_saved_connection_uses_its_key_on_port_5671(hub_server: HubServer, tmp_path):
    text = hub_server.service_connection_string()
    profiles = ProfileManager(tmp_path)
    profiles.add("Lab hub", text, session_only=True)
    session = HubSessionState(profiles)
    service = service_for(hub_server)
    try:
        await session.use("Lab hub", service)
        endpoint = session_endpoint(session)
    finally:
        await session.aclose()
    expected = parse(text)
    assert endpoint is not None
    assert (endpoint.host, endpoint.port) == ("localhost", AMQPS_PORT)
    assert (endpoint.policy, endpoint.key) == ("iothubowner", expected.shared_access_key)
    assert endpoint.credential is None
    assert expected.shared_access_key not in repr(endpoint)


async def test_the_local_hub_uses_its_amqp_port_and_ca(hub_server: HubServer, tmp_path):
    session = HubSessionState(ProfileManager(tmp_path))
    info = LocalHubInfo.from_json(hub_server.ready_info())
    session.local_info = info  # as the session keeps the local hub it started
    try:
        await session.use(LOCAL_HUB, service_for(hub_server))
        endpoint = session_endpoint(session)
        assert endpoint is not None
        assert (endpoint.port, endpoint.ca_cert) == (info.amqp_port, info.ca_cert)
        session.local_info = LocalHubInfo(**{**info.__dict__, "amqp_port": None})
        with pytest.raises(EndpointError, match="started without AMQP"):
            session_endpoint(session)
    finally:
        session.local_info = None
        await session.aclose()


async def test_an_entra_session_uses_its_credential(tmp_path) -> None:
    credential = object()
    session = HubSessionState(ProfileManager(tmp_path))
    session.service = HubService.from_credential("contoso.azure-devices.net", credential)
    session.name = "Contoso"
    try:
        endpoint = session_endpoint(session)
    finally:
        await session.service.aclose()
    assert endpoint is not None
    assert (endpoint.host, endpoint.port, endpoint.key) == ("contoso.azure-devices.net", 5671, "")
    assert endpoint.credential is credential
