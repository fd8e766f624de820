"""X.509 over MQTT over WebSockets with the unmodified Python device SDK
(``create_from_x509_certificate(..., websockets=True)``): the client certificate rides the
TLS to port 443 (here through the hub's CONNECT proxy to the REST port), and the MQTT
engine behind the WebSocket sees the chain as over 8883 (reference A.14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.iot.device.exceptions import CredentialError

from tests.localhub.mqtt_support import SERVER_LOGS, MqttHub, mqtt_hub, watch_log
from tests.localhub.test_x509_auth_sdk import (
    DEVICE,
    MODULE,
    register,
    verified_ca,
    write_pair,
    x509_client,
)
from twin_explorer.connection import certificates as certs

__all__ = ["mqtt_hub"]  # the fixture
CLIENT = f"{DEVICE}/{MODULE}"


@pytest.mark.parametrize("kind", ["selfSigned", "certificateAuthority"])
async def test_module_with_a_certificate_over_websockets(
    mqtt_hub: MqttHub, tmp_path: Path, kind: str
) -> None:
    if kind == "selfSigned":
        issued = certs.self_signed(CLIENT)
        register(mqtt_hub, kind, primaryThumbprint=issued.sha1)
    else:
        issued = certs.issue(verified_ca(mqtt_hub), CLIENT)
        register(mqtt_hub, kind)
    core = mqtt_hub.core
    with watch_log(*SERVER_LOGS) as log:
        x509 = write_pair(tmp_path, "m", issued)
        async with x509_client(mqtt_hub, x509, websockets=True) as module:
            await module.connect()
            assert await log.wait_for_async(f"{CLIENT} connected", "over wss")
            assert core.get_module(DEVICE, MODULE)["connectionState"] == "Connected"
            assert await module.get_twin() == {
                "desired": {"$version": 1},
                "reported": {"$version": 1},
            }
            await module.patch_twin_reported_properties({"state": "ok"})
            assert core.get_twin(DEVICE, MODULE)["properties"]["reported"]["state"] == "ok"


async def test_another_identitys_certificate_over_websockets_is_refused(
    mqtt_hub: MqttHub, tmp_path: Path
) -> None:
    mine, theirs = certs.self_signed(CLIENT), certs.self_signed(CLIENT)
    register(mqtt_hub, "selfSigned", primaryThumbprint=mine.sha1)
    with watch_log(*SERVER_LOGS) as log:
        x509 = write_pair(tmp_path, "m", theirs)
        async with x509_client(mqtt_hub, x509, websockets=True) as module:
            with pytest.raises(CredentialError):
                await module.connect()
        await log.wait_for_async(f"refused {CLIENT!r}", "matches neither thumbprint")
    assert mqtt_hub.core.presence.online() == []
