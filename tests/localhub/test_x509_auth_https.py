"""X.509 on the device HTTPS API: a client certificate instead of an Authorization
header, judged by the same core check as MQTT (thumbprint, or verified CA and CN)."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp

from twin_explorer.connection import certificates as certs
from twin_explorer.localhub.runtime.server import HubServer


def _register(hub: HubServer, device: str, issued: certs.Issued) -> None:
    auth = {"type": "selfSigned", "x509Thumbprint": {"primaryThumbprint": issued.sha1}}
    hub.core.put_device(device, {"status": "enabled", "authentication": auth}, None)


async def _send(hub: HubServer, tmp: Path, device: str, issued: certs.Issued | None) -> tuple:
    ctx = ssl.create_default_context(cafile=str(hub.certificates.ca_cert))
    if issued is not None:
        (tmp / "c.pem").write_text(issued.cert_pem)
        (tmp / "c.key").write_bytes(certs.key_pem(issued.key))
        ctx.load_cert_chain(tmp / "c.pem", tmp / "c.key")
    url = f"https://{hub.hostname}:{hub.rest_port}/devices/{device}/messages/events"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=b"hello", params={"api-version": "2020-03-13"}, ssl=ctx) as response,
    ):
        return response.status, response.headers.get("iothub-errorcode")


async def test_a_device_sends_telemetry_with_its_certificate(
    hub_server: HubServer, tmp_path: Path
) -> None:
    mine, theirs = certs.self_signed("x-dev"), certs.self_signed("other")
    _register(hub_server, "x-dev", mine)
    assert await _send(hub_server, tmp_path, "x-dev", mine) == (204, None)
    assert [m["body"] for m in hub_server.core.telemetry("x-dev")] == [b"hello"]
    refused = (401, "IotHubUnauthorizedAccess")
    assert await _send(hub_server, tmp_path, "x-dev", theirs) == refused
    assert await _send(hub_server, tmp_path, "x-dev", None) == refused
    assert len(hub_server.core.telemetry("x-dev")) == 1
