"""X.509 logins over MQTT with the unmodified Python device SDK (reference A.14, D.4).

The module-twin tutorial flow with ``IoTHubModuleClient.create_from_x509_certificate``,
self-signed and CA-signed, and every refusal IoT Hub makes: CONNACK 5 (the SDK's
``CredentialError``) and a log line that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.iot.device import X509
from azure.iot.device.aio import IoTHubDeviceClient, IoTHubModuleClient
from azure.iot.device.exceptions import CredentialError
from azure.iot.hub.models import Twin, TwinProperties

from tests.hubfixtures import server_registry_manager
from tests.localhub.mqtt_support import (
    SERVER_LOGS,
    Inbox,
    MqttHub,
    ensure_identity,
    mqtt_hub,
    set_handler,
    watch_log,
)
from twin_explorer.connection import certificates as certs
from twin_explorer.connection.sas import device_resource_uri, generate_device_token, generate_key

__all__ = ["mqtt_hub"]

DEVICE, MODULE = "x509-device", "x509-module"
PASS = "test-pass-phrase"


def write_pair(folder: Path, name: str, issued: certs.Issued, chain=()) -> X509:
    """The certificate (with its chain) and an encrypted key, as the SDK takes them."""
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_text(certs.cert_pem(issued.cert, chain))
    key_file.write_bytes(certs.key_pem(issued.key, PASS.encode()))
    return X509(str(cert_file), str(key_file), PASS)


def register(
    hub: MqttHub, kind: str, device: str = DEVICE, module: str | None = MODULE, **prints: str
) -> None:
    auth: dict[str, Any] = {"type": kind}
    if prints:
        auth["x509Thumbprint"] = prints
    body = {"authentication": auth}
    if module is None:
        hub.core.put_device(device, {"status": "enabled", **body}, None)
        return
    if hub.core.store.get_device(device) is None:
        hub.core.put_device(device, {"status": "enabled", "authentication": {"type": "sas"}}, None)
    hub.core.put_module(device, module, body, None)


def verified_ca(hub: MqttHub, name: str = "test-root") -> certs.Issued:
    """A root CA uploaded and verified with proof of possession, as on IoT Hub."""
    ca = certs.new_ca("Twin Explorer Test Root")
    hub.core.certificates.add(name, ca.cert_pem)
    code = hub.core.certificates.verification_code(name).verification_code
    assert code
    hub.core.certificates.verify(name, certs.proof_of_possession(ca, code).cert_pem)
    return ca


@contextlib.asynccontextmanager
async def x509_client(
    hub: MqttHub,
    x509: X509,
    device: str = DEVICE,
    module: str | None = MODULE,
    *,
    websockets: bool = False,
) -> AsyncIterator[Any]:
    kwargs = {
        "server_verification_cert": hub.ca_pem,
        "proxy_options": hub.proxy(),
        "websockets": websockets,
    }
    if module is None:
        client = IoTHubDeviceClient.create_from_x509_certificate(
            x509=x509, hostname=hub.core.hostname, device_id=device, **kwargs
        )
    else:
        client = IoTHubModuleClient.create_from_x509_certificate(
            x509=x509, hostname=hub.core.hostname, device_id=device, module_id=module, **kwargs
        )
    try:
        yield client
    finally:
        await client.shutdown()


async def service(hub: MqttHub, method: str, *args: Any) -> Any:
    return await asyncio.to_thread(
        lambda: getattr(server_registry_manager(hub.server), method)(*args)
    )


async def tutorial_flow(hub: MqttHub, x509: X509, auth_type: str) -> None:
    """The module-twin tutorial: connect, read the twin, get a desired patch, report."""
    async with x509_client(hub, x509) as module:
        await module.connect()
        module_info = await service(hub, "get_module", DEVICE, MODULE)
        assert module_info.connection_state == "Connected"
        assert module_info.authentication.type == auth_type
        assert await module.get_twin() == {"desired": {"$version": 1}, "reported": {"$version": 1}}

        patches = Inbox()
        await set_handler(module, "on_twin_desired_properties_patch_received", patches)
        twin = await service(hub, "get_module_twin", DEVICE, MODULE)
        update = Twin(properties=TwinProperties(desired={"telemetryInterval": 5}))
        await service(hub, "update_module_twin", DEVICE, MODULE, update, twin.etag)
        assert await patches.get() == {"telemetryInterval": 5, "$version": 2}

        await module.patch_twin_reported_properties({"telemetryInterval": 5})
        twin = await service(hub, "get_module_twin", DEVICE, MODULE)
        assert twin.properties.reported["telemetryInterval"] == 5
        assert twin.authentication_type == auth_type
    module_info = await service(hub, "get_module", DEVICE, MODULE)
    assert module_info.connection_state == "Disconnected"


async def test_self_signed_module_runs_the_tutorial(mqtt_hub: MqttHub, tmp_path: Path) -> None:
    issued = certs.self_signed(certs.identity_cn(DEVICE, MODULE))
    await service(mqtt_hub, "create_device_with_sas", DEVICE, None, None, "enabled")
    await service(mqtt_hub, "create_module_with_x509", DEVICE, MODULE, None, issued.sha1, None)
    await tutorial_flow(mqtt_hub, write_pair(tmp_path, "m", issued), "selfSigned")


async def test_self_signed_matches_a_sha256_secondary_thumbprint(
    mqtt_hub: MqttHub, tmp_path: Path
) -> None:
    other, issued = certs.self_signed("other"), certs.self_signed("any subject at all")
    register(
        mqtt_hub, "selfSigned", primaryThumbprint=other.sha1, secondaryThumbprint=issued.sha256
    )
    async with x509_client(mqtt_hub, write_pair(tmp_path, "m", issued)) as module:
        await module.connect()
        assert module.connected


async def test_ca_signed_module_runs_the_tutorial(mqtt_hub: MqttHub, tmp_path: Path) -> None:
    ca = verified_ca(mqtt_hub)
    leaf = certs.issue(ca, certs.identity_cn(DEVICE, MODULE))
    register(mqtt_hub, "certificateAuthority")
    await tutorial_flow(mqtt_hub, write_pair(tmp_path, "m", leaf), "certificateAuthority")


async def test_ca_signed_device_through_an_intermediate(mqtt_hub: MqttHub, tmp_path: Path) -> None:
    ca = verified_ca(mqtt_hub)
    intermediate = certs.issue(ca, "Twin Explorer Test Intermediate", ca=True)
    leaf = certs.issue(intermediate, DEVICE)
    register(mqtt_hub, "certificateAuthority", module=None)
    x509 = write_pair(tmp_path, "d", leaf, chain=[intermediate.cert])
    async with x509_client(mqtt_hub, x509, module=None) as device:
        await device.connect()
        await device.patch_twin_reported_properties({"ok": True})
    twin = await service(mqtt_hub, "get_twin", DEVICE)
    assert twin.properties.reported["ok"] is True


# --- refusals: CONNACK 5 and a log line that says why --------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _expired(hub: MqttHub) -> certs.Issued:
    issued = certs.self_signed("old", days=1, now=_now() - timedelta(days=10))
    register(hub, "selfSigned", primaryThumbprint=issued.sha1)
    return issued


def _not_yet_valid(hub: MqttHub) -> certs.Issued:
    issued = certs.self_signed("early", days=10, now=_now() + timedelta(days=2))
    register(hub, "selfSigned", primaryThumbprint=issued.sha1)
    return issued


def _wrong_cn(hub: MqttHub) -> certs.Issued:
    register(hub, "certificateAuthority")
    return certs.issue(verified_ca(hub), f"{DEVICE}/another-module")


def _unverified_ca(hub: MqttHub) -> certs.Issued:
    ca = certs.new_ca("Never Verified Root")
    hub.core.certificates.add("unverified", ca.cert_pem)
    register(hub, "certificateAuthority")
    return certs.issue(ca, certs.identity_cn(DEVICE, MODULE))


def _unknown_ca(hub: MqttHub) -> certs.Issued:
    verified_ca(hub)
    register(hub, "certificateAuthority")
    return certs.issue(certs.new_ca("Stranger Root"), certs.identity_cn(DEVICE, MODULE))


def _another_identitys(hub: MqttHub) -> certs.Issued:
    mine, theirs = certs.self_signed("mine"), certs.self_signed("theirs")
    register(hub, "selfSigned", primaryThumbprint=mine.sha1)
    register(hub, "selfSigned", module="their-module", primaryThumbprint=theirs.sha1)
    return theirs


def _sas_identity(hub: MqttHub) -> certs.Issued:
    ensure_identity(hub.core, DEVICE, MODULE)
    return certs.self_signed(certs.identity_cn(DEVICE, MODULE))


REFUSALS = {
    "expired": (_expired, "expired"),
    "not yet valid": (_not_yet_valid, "is not valid yet"),
    "wrong CN": (_wrong_cn, "must have CN=x509-device/x509-module"),
    "unverified CA": (_unverified_ca, "holds but has not verified"),
    "unknown CA": (_unknown_ca, "does not end in a CA certificate this hub holds"),
    "another identity's certificate": (_another_identitys, "matches neither thumbprint"),
    "SAS identity with a certificate": (_sas_identity, "not X.509: it presented a client"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_with_connack_5_and_a_reason(
    mqtt_hub: MqttHub, tmp_path: Path, case: str
) -> None:
    make, reason = REFUSALS[case]
    issued = make(mqtt_hub)
    with watch_log(*SERVER_LOGS) as log:
        async with x509_client(mqtt_hub, write_pair(tmp_path, "m", issued)) as module:
            with pytest.raises(CredentialError):
                await module.connect()
        line = await log.wait_for_async("refused 'x509-device/x509-module'", reason)
    assert "BEGIN" not in line and PASS not in line
    assert mqtt_hub.core.get_module(DEVICE, MODULE)["connectionState"] == "Disconnected"


async def test_x509_identity_trying_sas_is_refused(mqtt_hub: MqttHub) -> None:
    register(mqtt_hub, "selfSigned", primaryThumbprint=certs.self_signed("m").sha1)
    uri = device_resource_uri(mqtt_hub.core.hostname, DEVICE, MODULE)
    token = generate_device_token(uri, generate_key())
    client = IoTHubModuleClient.create_from_sastoken(
        token, server_verification_cert=mqtt_hub.ca_pem, proxy_options=mqtt_hub.proxy()
    )
    try:
        with watch_log(*SERVER_LOGS) as log:
            with pytest.raises(CredentialError):
                await client.connect()
            await log.wait_for_async("refused 'x509-device/x509-module'", "no symmetric keys")
    finally:
        await client.shutdown()
