"""Who may attach what over AMQP: CBS put-token and SASL PLAIN checked by the core, each
link authorised by the identity or policy its token grants (reference B), refusals with
IoT Hub's conditions."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.localhub.amqp.raw_client import RECEIVER, SENDER, RawClient
from tests.localhub.amqp.support import amqp_hub, identity_token, raw_client
from twin_explorer.connection.sas import (
    device_resource_uri,
    generate_device_token,
    generate_key,
    generate_service_token,
)
from twin_explorer.localhub.protocols.amqp import Symbol
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.transports.amqp.connection import MAX_REFUSED_TOKENS

__all__ = ["amqp_hub"]  # the fixture
UNAUTHORIZED = Symbol("amqp:unauthorized-access")


async def _refused(client: RawClient, address: str, role: bool) -> Symbol:
    """Attach and return the condition the hub detached the link with."""
    link = await client.attach(address, role, credit=0)
    async with asyncio.timeout(10):
        detach = await link.detached
    assert detach.error is not None, detach
    return detach.error.condition


async def test_a_wrong_key_or_an_expired_token_is_refused(amqp_hub: HubServer) -> None:
    identity_token(amqp_hub, "d1")  # creates the device
    client = await raw_client(amqp_hub)
    try:
        forged = generate_device_token(device_resource_uri("localhost", "d1"), generate_key())
        status, description = await client.put_token(forged)
        assert status == 401 and "wrong key" in description
        expired = identity_token(amqp_hub, "d1", ttl=10, now=time.time() - 60)
        status, description = await client.put_token(expired)
        assert status == 401 and "expired" in description
        # Nothing was granted: the identity's links are refused.
        assert await _refused(client, "/devices/d1/twin", SENDER) == UNAUTHORIZED
    finally:
        await client.close()


async def test_a_module_cannot_attach_another_identitys_links(amqp_hub: HubServer) -> None:
    identity_token(amqp_hub, "d1", "m2")
    client = await raw_client(amqp_hub)
    try:
        assert await client.put_token(identity_token(amqp_hub, "d1", "m1")) == (200, "OK")
        await client.attach("/devices/d1/modules/m1/twin", SENDER)  # its own: fine
        for address in ("/devices/d1/modules/m2/twin", "/devices/d1/twin"):
            assert await _refused(client, address, RECEIVER) == UNAUTHORIZED
        assert await _refused(client, "/devices/d1/modules/m1/nothing", SENDER) == Symbol(
            "amqp:not-found"
        )
    finally:
        await client.close()


async def test_a_device_token_on_a_service_node_is_refused(amqp_hub: HubServer) -> None:
    client = await raw_client(amqp_hub)
    try:
        assert (await client.put_token(identity_token(amqp_hub, "d1")))[0] == 200
        assert await _refused(client, "/messages/devicebound", SENDER) == UNAUTHORIZED
        key = amqp_hub.core.policy_keys("service")[0]
        assert (await client.put_token(generate_service_token("localhost", "service", key)))[
            0
        ] == 200
        await client.attach("/messages/devicebound", SENDER)  # now it may
    finally:
        await client.close()


async def test_sasl_plain_checks_its_password_as_a_sas_token(amqp_hub: HubServer) -> None:
    token = identity_token(amqp_hub, "d1")
    client = await raw_client(amqp_hub, sasl=("PLAIN", b"\0d1@sas.localhost\0" + token.encode()))
    try:
        await client.attach("/devices/d1/twin", SENDER)  # no put-token needed
        assert amqp_hub.core.presence.online() == ["d1"]
    finally:
        await client.close()
    with pytest.raises(PermissionError):
        await raw_client(amqp_hub, sasl=("PLAIN", b"\0d1@sas.localhost\0" + token[:-3].encode()))
    # A policy's token (user <policy>@sas.root.<hub>) opens the service nodes.
    key = amqp_hub.core.policy_keys("service")[0]
    service = generate_service_token("localhost", "service", key).encode()
    client = await raw_client(amqp_hub, sasl=("PLAIN", b"\0service@sas.root.localhost\0" + service))
    try:
        await client.attach("/messages/devicebound", SENDER)
        assert await _refused(client, "/devices/d1/twin", SENDER) == UNAUTHORIZED
    finally:
        await client.close()


async def test_an_expired_token_detaches_its_links_unless_renewed(amqp_hub: HubServer) -> None:
    identity_token(amqp_hub, "d2")
    lapsing, renewing = await raw_client(amqp_hub), await raw_client(amqp_hub)
    try:
        now = time.time()
        assert (await lapsing.put_token(identity_token(amqp_hub, "d1", ttl=2, now=now)))[0] == 200
        assert (await renewing.put_token(identity_token(amqp_hub, "d2", ttl=2, now=now)))[0] == 200
        lapsed = await lapsing.attach("/devices/d1/twin", RECEIVER)
        kept = await renewing.attach("/devices/d2/twin", RECEIVER)
        assert (await renewing.put_token(identity_token(amqp_hub, "d2")))[0] == 200
        async with asyncio.timeout(10):
            detach = await lapsed.detached
        assert detach.error.condition == UNAUTHORIZED
        assert not kept.detached.done()
        assert amqp_hub.core.presence.online() == ["d2"]
    finally:
        await lapsing.close()
        await renewing.close()


async def test_a_connection_that_keeps_presenting_bad_tokens_is_closed(amqp_hub: HubServer) -> None:
    client = await raw_client(amqp_hub)
    try:
        forged = generate_device_token(device_resource_uri("localhost", "d1"), generate_key())
        for _ in range(MAX_REFUSED_TOKENS):
            assert (await client.put_token(forged))[0] == 401
        async with asyncio.timeout(10):
            close = await client.closed
        assert close is not None and close.error.condition == UNAUTHORIZED
    finally:
        await client.close()
