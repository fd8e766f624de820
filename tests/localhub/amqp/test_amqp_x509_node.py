"""X.509 over AMQP with the unmodified Node.js device SDK (``azure-iot-device-amqp``,
``x509=true``): no CBS put-token, the TLS client certificate authorises the links. The
tutorial flow self-signed and CA-signed, as a device (the Node SDK's ModuleClient takes
only SAS tokens); refusals detach with
``amqp:unauthorized-access`` and a log line saying why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.localhub.amqp.support import SERVER_LOGS, amqp_hub, event_of
from tests.localhub.mqtt_support import ensure_identity, watch_log
from tests.localhub.test_x509_auth_sdk import register, verified_ca
from tests.node.harness import NodeDevice
from twin_explorer.connection import certificates as certs
from twin_explorer.localhub.runtime.server import HubServer

__all__ = ["amqp_hub"]  # the fixture


def _files(folder: Path, issued: certs.Issued) -> tuple[Path, Path]:
    cert, key = folder / "client.pem", folder / "client.key"
    cert.write_text(issued.cert_pem)
    key.write_bytes(certs.key_pem(issued.key))
    return cert, key


async def _node(
    hub: HubServer, device: str, files: tuple[Path, Path], transport: str = "amqp"
) -> NodeDevice:
    """Over ``amqp`` to the AMQP port, or ``amqpws`` to 443 through the hub's CONNECT
    proxy (the certificate then rides the TLS under the WebSocket)."""
    cs = f"HostName={hub.core.hostname};DeviceId={device};x509=true"
    if transport == "amqpws":
        return await NodeDevice.start(
            cs,
            None,
            hub.certificates.ca_cert,
            transport=transport,
            x509=files,
            ws_proxy_port=hub.proxy_port,
        )
    return await NodeDevice.start(
        cs, hub.amqp_port, hub.certificates.ca_cert, transport=transport, x509=files
    )


@pytest.mark.parametrize("transport", ["amqp", "amqpws"])
@pytest.mark.parametrize("kind", ["selfSigned", "certificateAuthority"])
async def test_node_device_tutorial_flow_over_amqp_with_a_certificate(
    amqp_hub: HubServer, tmp_path: Path, kind: str, transport: str
) -> None:
    core = amqp_hub.core
    if kind == "selfSigned":
        issued = certs.self_signed("tut")
        register(amqp_hub, kind, device="tut", module=None, primaryThumbprint=issued.sha1)
    else:
        issued = certs.issue(verified_ca(amqp_hub), "tut")
        register(amqp_hub, kind, device="tut", module=None)
    files = _files(tmp_path, issued)
    with watch_log(*SERVER_LOGS) as log:
        async with await _node(amqp_hub, "tut", files, transport) as node:
            await node.call("open")  # no CBS: the first link names the identity
            twin = await node.call("get_twin")
            assert "$version" in twin["desired"]
            assert core.get_device("tut")["connectionState"] == "Connected"
            via = "wss" if transport == "amqpws" else "amqps"
            await log.wait_for_async("tut connected from", f"({via})")

            await node.call("report", patch={"fw": "2", "state": "ok"})
            assert core.get_twin("tut", None)["properties"]["reported"]["state"] == "ok"

            desired = {"properties": {"desired": {"fw": "3"}}}
            version = core.patch_twin("tut", None, desired, None)["properties"]["desired"][
                "$version"
            ]
            while (event := await event_of(node, "desired"))["patch"].get("$version") != version:
                pass
            assert event["patch"]["fw"] == "3"

            await node.call("send", body='{"temp":20}')
            assert [m["body"] for m in core.telemetry("tut", None)] == [b'{"temp":20}']
            await node.call("close")


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("another identity's certificate", r"matches neither thumbprint"),
        ("wrong CN", r"CN is 'someone-else'"),
        ("a SAS identity", r"not X\.509"),
    ],
)
async def test_node_device_refused_over_amqp(
    amqp_hub: HubServer, tmp_path: Path, case: str, why: str
) -> None:
    core = amqp_hub.core
    if case == "another identity's certificate":
        mine, presented = certs.self_signed("amqp-x509"), certs.self_signed("amqp-x509")
        prints = {"primaryThumbprint": mine.sha1}
        register(amqp_hub, "selfSigned", device="amqp-x509", module=None, **prints)
    elif case == "wrong CN":
        presented = certs.issue(verified_ca(amqp_hub), "someone-else")
        register(amqp_hub, "certificateAuthority", device="amqp-x509", module=None)
    else:
        ensure_identity(core, "amqp-x509")
        presented = certs.self_signed("amqp-x509")
    with watch_log(*SERVER_LOGS) as log:
        async with await _node(amqp_hub, "amqp-x509", _files(tmp_path, presented)) as node:
            await node.call("open")  # TLS and the AMQP open: the links are refused
            with pytest.raises(AssertionError, match=r"get_twin failed"):
                await node.call("get_twin")
        line = await log.wait_for_async("attach to /devices/amqp-x509/twin refused")
    assert "amqp-x509" in line
    assert re.search(why, line), line
    assert core.get_device("amqp-x509")["connectionState"] == "Disconnected"
    assert core.presence.online() == []
