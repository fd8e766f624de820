"""X.509 over MQTT with the unmodified Node.js device SDK (``x509=true``): a self-signed
device and a CA-signed one connect and read their twin; a certificate for another
identity is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.localhub.mqtt_support import MqttHub, mqtt_hub
from tests.localhub.test_x509_auth_sdk import register, verified_ca
from tests.node.harness import NodeDevice
from twin_explorer.connection import certificates as certs

__all__ = ["mqtt_hub"]


def _files(folder: Path, issued: certs.Issued) -> tuple[Path, Path]:
    cert, key = folder / "device.pem", folder / "device.key"
    cert.write_text(issued.cert_pem)
    key.write_bytes(certs.key_pem(issued.key))
    return cert, key


async def _node(hub: MqttHub, device: str, files: tuple[Path, Path]) -> NodeDevice:
    port = hub.server.mqtt_port
    assert port is not None
    cs = f"HostName={hub.core.hostname};DeviceId={device};x509=true"
    return await NodeDevice.start(cs, port, hub.server.certificates.ca_cert, x509=files)


@pytest.mark.parametrize("kind", ["selfSigned", "certificateAuthority"])
async def test_node_device_connects_with_its_certificate(
    mqtt_hub: MqttHub, tmp_path: Path, kind: str
) -> None:
    if kind == "selfSigned":
        issued = certs.self_signed("node-x509")
        register(mqtt_hub, kind, device="node-x509", module=None, primaryThumbprint=issued.sha1)
    else:
        issued = certs.issue(verified_ca(mqtt_hub), "node-x509")
        register(mqtt_hub, kind, device="node-x509", module=None)
    async with await _node(mqtt_hub, "node-x509", _files(tmp_path, issued)) as node:
        await node.call("open")
        twin = await node.call("get_twin")
        assert twin["desired"]["$version"] == 1
        assert mqtt_hub.core.get_device("node-x509")["connectionState"] == "Connected"


async def test_node_device_with_another_identitys_certificate_is_refused(
    mqtt_hub: MqttHub, tmp_path: Path
) -> None:
    mine, theirs = certs.self_signed("mine"), certs.self_signed("theirs")
    register(mqtt_hub, "selfSigned", device="node-x509", module=None, primaryThumbprint=mine.sha1)
    async with await _node(mqtt_hub, "node-x509", _files(tmp_path, theirs)) as node:
        with pytest.raises(AssertionError, match=r"open failed: .*(?i:unauthorized|not auth)"):
            await node.call("open")
    assert mqtt_hub.core.get_device("node-x509")["connectionState"] == "Disconnected"
