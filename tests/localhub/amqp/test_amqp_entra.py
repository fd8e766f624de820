"""Microsoft Entra ID on AMQP CBS: a ``jwt``/``bearer`` put-token is checked by the same
core function as REST's Bearer header, and the principal's roles decide which service
nodes it may attach to (C2D send: ``cloudToDeviceMessages/send/action``; feedback:
``cloudToDeviceMessages/feedback/action``).

The seed's ``IoTHubRegistryManager.from_token_credential`` with a real ``azure-identity``
credential sends C2D over uamqp, which always dials port 5671 of the host name: it runs
in a private network namespace whose 443, 5671 and the authority's port lead to the hub
(as in test_amqp_service_c2d)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.hubfixtures import strip_port
from tests.localhub.amqp.raw_client import RECEIVER, SENDER, data_message
from tests.localhub.amqp.support import SERVER_LOGS, amqp_hub, node_over_amqp, raw_client
from tests.localhub.mqtt_support import watch_log
from tests.localhub.test_entra import client_credential, roles
from tests.node.netns import HTTPS_PORT, PrivateLoopback, private_loopback_or_skip
from twin_explorer.localhub.core.entra import IOTHUB_RESOURCE
from twin_explorer.localhub.protocols.amqp import Accepted, Symbol
from twin_explorer.localhub.runtime.server import HubServer

__all__ = ["amqp_hub"]  # the fixture
AMQPS_PORT = 5671
UNAUTHORIZED = Symbol("amqp:unauthorized-access")
# The secret comes in the environment, never argv.
SEND = """
import os, sys
from azure.identity import ClientSecretCredential
from azure.iot.hub import IoTHubRegistryManager
if sys.argv[1] == "entra":
    credential = ClientSecretCredential(
        os.environ["TE_TENANT"], os.environ["TE_CLIENT"], os.environ["TE_SECRET"],
        authority=os.environ["TE_AUTHORITY"], disable_instance_discovery=True,
        connection_verify=os.environ["SSL_CERT_FILE"],
    )
    manager = IoTHubRegistryManager.from_token_credential("localhost", credential)
else:
    manager = IoTHubRegistryManager.from_connection_string(os.environ["TE_SERVICE"])
try:
    manager.send_c2d_message(sys.argv[2], sys.argv[3], properties={"messageId": "entra-1"})
except Exception as exc:
    print("failed:", type(exc).__name__)
    sys.exit(1)
print("sent")
"""


@pytest_asyncio.fixture
async def network(amqp_hub: HubServer) -> AsyncIterator[PrivateLoopback]:
    hub = amqp_hub
    assert hub.amqp_port is not None and hub.rest_port is not None
    network = private_loopback_or_skip(HTTPS_PORT, AMQPS_PORT, hub.rest_port)
    try:
        for port, listen in (
            (hub.rest_port, HTTPS_PORT),
            (hub.amqp_port, AMQPS_PORT),
            (hub.rest_port, hub.rest_port),  # the authority, at its own URL
        ):
            await network.forward_to("127.0.0.1", port, listen_port=listen)
        yield network
    finally:
        await network.close()


async def _send_c2d(hub: HubServer, network: PrivateLoopback, how: str, device: str) -> str:
    """The unmodified service SDK's send_c2d_message in the namespace; its output."""
    info = hub.ready_info()
    env = {**os.environ, "SSL_CERT_FILE": str(hub.certificates.ca_cert)}
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env.pop(key, None)
    env |= {
        "TE_TENANT": info["entra_tenant_id"],
        "TE_CLIENT": info["entra_client_id"],
        "TE_SECRET": info["entra_client_secret"],
        "TE_AUTHORITY": info["entra_authority"],
        "TE_SERVICE": strip_port(hub.service_connection_string("service"), hub.hostname),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SEND,
        how,
        device,
        '{"cmd":"on"}',
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=network.enter,
    )
    async with asyncio.timeout(90):
        out, err = await process.communicate()
    return out.decode() + err.decode()[-2000:]


async def test_from_token_credential_sends_c2d_a_device_receives(
    amqp_hub: HubServer, network: PrivateLoopback
) -> None:
    hub = amqp_hub
    assert roles(hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
    async with await node_over_amqp(hub, "entradev") as node:
        await node.call("open")
        await node.call("on_c2d", settle="complete")
        with watch_log(*SERVER_LOGS) as log:
            output = await _send_c2d(hub, network, "entra", "entradev")
            assert output.startswith("sent"), output
            assert log.find("Entra ID token accepted")
        event = await node.next_event()
        assert event["event"] == "c2d", event
        assert (event["body"], event["messageId"]) == ('{"cmd":"on"}', "entra-1")


async def test_a_principal_without_the_role_is_refused(
    amqp_hub: HubServer, network: PrivateLoopback
) -> None:
    hub = amqp_hub
    assert roles(hub, "assign", "test-client", "IoT Hub Registry Contributor") == 0
    with watch_log(*SERVER_LOGS) as log:
        output = await _send_c2d(hub, network, "entra", "nobody-needed")
        assert output.startswith("failed"), output
        line = await log.wait_for_async("/messages/devicebound refused", "not authorized")
    assert "Twin Explorer test client" in line
    assert hub.core.c2d.depth("nobody-needed") == 0


async def test_disable_local_auth_refuses_sas_put_tokens_but_takes_the_jwt(
    amqp_hub: HubServer, network: PrivateLoopback
) -> None:
    hub = amqp_hub
    hub.core.put_device("quiet", {"status": "enabled"}, None)
    assert roles(hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
    hub.core.local_auth_disabled = True
    with watch_log(*SERVER_LOGS) as log:
        output = await _send_c2d(hub, network, "sas", "quiet")
        assert output.startswith("failed"), output
        assert await log.wait_for_async("put-token", "refused", "Shared access keys are disabled")
    assert hub.core.c2d.depth("quiet") == 0
    output = await _send_c2d(hub, network, "entra", "quiet")
    assert output.startswith("sent"), output
    assert hub.core.c2d.depth("quiet") == 1


async def _token(hub: HubServer) -> str:
    credential = client_credential(hub.ready_info())
    return (await asyncio.to_thread(credential.get_token, IOTHUB_RESOURCE + "/.default")).token


@pytest.mark.parametrize("token_type", ["jwt", "bearer"])
async def test_feedback_and_send_links_follow_the_roles(
    amqp_hub: HubServer, token_type: str
) -> None:
    hub = amqp_hub
    hub.core.put_device("fb", {"status": "enabled"}, None)
    token = await _token(hub)
    client = await raw_client(hub)
    try:
        assert await client.put_token(token, token_type=token_type) == (200, "OK")
        # No role yet: both service nodes are refused, saying what is missing.
        for address, role in (
            ("/messages/devicebound", SENDER),
            ("/messages/servicebound/feedback", RECEIVER),
        ):
            link = await client.attach(address, role)
            detach = await link.detached
            assert detach.error is not None and detach.error.condition == UNAUTHORIZED
            assert "not authorized" in str(detach.error.description)
        assert roles(hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
        feedback = await client.attach("/messages/servicebound/feedback", RECEIVER)
        sender = await client.attach("/messages/devicebound", SENDER)
        message = data_message(b"x", to="/devices/fb/messages/devicebound")
        assert isinstance(await client.send(sender, message), Accepted)
        assert not feedback.detached.done()  # the hub has answered since: it stays
        assert hub.core.c2d.depth("fb") == 1
    finally:
        await client.close()


async def test_a_bad_jwt_is_refused_at_put_token(amqp_hub: HubServer) -> None:
    client = await raw_client(amqp_hub)
    try:
        status, description = await client.put_token("Bearer not.a.jwt", token_type="bearer")
        assert (status, description) == (401, "The access token is not a valid JWT.")
        link = await client.attach("/messages/devicebound", SENDER)
        detach: Any = await link.detached
        assert detach.error.condition == UNAUTHORIZED
    finally:
        await client.close()
