"""IoT Hub's device HTTPS endpoint for cloud-to-device messages, as the Node SDK's Http
transport uses it: the one way a device can complete, reject or abandon a message.

``GET /devices/{d}/messages/deviceBound``: 204 for an empty queue, else 200 with the
body, the lock token as a quoted ``ETag`` and the properties as ``iothub-*`` headers
(application ones ``iothub-app-*``). ``DELETE …/{etag}`` completes, ``DELETE
…/{etag}?reject`` rejects (dead-letters), ``POST …/{etag}/abandon`` puts it back; 412
when the lock ran out. The device proves itself with a SAS token signed with its key, or
with its X.509 certificate in the TLS handshake.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import aiohttp

from twin_explorer.connection.sas import device_resource_uri, generate_device_token
from twin_explorer.simulator.errors import (
    SimulatorError,
    TimedOut,
    Unauthorized,
    Unreachable,
    Untrusted,
)
from twin_explorer.simulator.x509_files import X509Identity, sdk_files

API_VERSION = "2021-04-12"
REQUEST_TIMEOUT = 20.0
TOKEN_TTL = 3600
LOCK_TIMEOUT_HEADER = "iothub-messagelocktimeout"
APP_PREFIX = "iothub-app-"
# Response headers that are the message's system properties (the rest address the reply).
SYSTEM_HEADERS = {
    "iothub-messageid": "messageId",
    "iothub-correlationid": "correlationId",
    "iothub-userid": "userId",
    "iothub-to": "to",
    "iothub-sequencenumber": "sequenceNumber",
    "iothub-enqueuedtime": "enqueuedTime",
    "iothub-deliverycount": "deliveryCount",
    "iothub-expiry": "expiryTimeUtc",
    "iothub-ack": "ack",
    "iothub-contentencoding": "contentEncoding",
}


class LockLost(SimulatorError):
    """The message's lock ran out (or the message is gone): 412."""


LOCK_LOST = "The message's lock ran out: it went back to the queue."


@dataclass(frozen=True)
class PolledMessage:
    body: bytes
    lock_token: str = field(repr=False)
    system: dict[str, str]
    properties: dict[str, str]
    content_type: str


@dataclass(frozen=True)
class Credentials:
    """How the device proves itself: its key (SAS) or its certificate."""

    host_name: str
    device_id: str
    key: str | None = field(default=None, repr=False)
    x509: X509Identity | None = field(default=None, repr=False)


class DeviceHttps:
    """One device's C2D calls over HTTPS; ``aclose`` when done."""

    def __init__(
        self, base_url: str, credentials: Credentials, *, ca_pem: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._ca_pem = ca_pem
        self._ssl: ssl.SSLContext | None = None  # made on first use, off the loop
        self._session: aiohttp.ClientSession | None = None
        path = f"/devices/{quote(credentials.device_id, safe='')}/messages/deviceBound"
        self._bound = self.base_url + path

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _headers(self) -> dict[str, str]:
        creds = self._credentials
        if creds.key is None:
            return {}
        resource = device_resource_uri(creds.host_name, creds.device_id)
        return {"Authorization": generate_device_token(resource, creds.key, ttl=TOKEN_TTL)}

    async def _request(
        self, method: str, url: str, headers: dict[str, str] | None = None, **params: str
    ) -> tuple[int, dict[str, str], bytes]:
        if self._ssl is None:
            # Loading the system's CAs (and writing an X.509 key for OpenSSL) takes time.
            self._ssl = await asyncio.to_thread(_tls_context, self._ca_pem, self._credentials.x509)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            )
        query = {"api-version": API_VERSION, **params}
        try:
            async with self._session.request(
                method,
                url,
                params=query,
                headers={**self._headers(), **(headers or {})},
                ssl=self._ssl,
            ) as response:
                body = await response.read()
                return response.status, dict(response.headers), body
        except aiohttp.ClientConnectorCertificateError:
            raise Untrusted(
                "The hub's HTTPS certificate is not trusted.",
                hint="For a local hub, give its CA certificate.",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(
                f"Could not reach the hub's HTTPS endpoint {self.base_url} ({type(exc).__name__}).",
                hint="Is the hub running and reachable?",
            ) from None
        except TimeoutError:
            raise TimedOut(
                f"The hub's HTTPS endpoint did not answer within {REQUEST_TIMEOUT:g} s."
            ) from None

    async def receive(self, lock_seconds: int) -> PolledMessage | None:
        """The next message, locked for ``lock_seconds``; None when the queue is empty."""
        status, headers, body = await self._request(
            "GET", self._bound, {LOCK_TIMEOUT_HEADER: str(lock_seconds)}
        )
        if status == 204:
            return None
        _check(status, body)
        return parse_message(headers, body)

    async def complete(self, lock_token: str) -> None:
        status, _, body = await self._request("DELETE", self._lock_url(lock_token))
        _check(status, body)

    async def reject(self, lock_token: str) -> None:
        status, _, body = await self._request("DELETE", self._lock_url(lock_token), reject="")
        _check(status, body)

    async def abandon(self, lock_token: str) -> None:
        status, _, body = await self._request("POST", self._lock_url(lock_token) + "/abandon")
        _check(status, body)

    def _lock_url(self, lock_token: str) -> str:
        return f"{self._bound}/{quote(lock_token, safe='')}"


def parse_message(headers: dict[str, str], body: bytes) -> PolledMessage:
    system: dict[str, str] = {}
    properties: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(APP_PREFIX):
            properties[unquote(name[len(APP_PREFIX) :])] = unquote(value)
        elif lowered in SYSTEM_HEADERS:
            system[SYSTEM_HEADERS[lowered]] = unquote(value)
    etag = next((v for k, v in headers.items() if k.lower() == "etag"), "")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if content_type.lower().startswith("application/octet-stream"):
        content_type = ""  # what HTTP says when the sender named none
    return PolledMessage(body, etag.strip('"'), system, properties, content_type)


def _check(status: int, body: bytes) -> None:
    if 200 <= status < 300:
        return
    if status == 412:
        raise LockLost(LOCK_LOST)
    if status in (401, 403):
        raise Unauthorized(
            "The hub refused the device's credentials on its HTTPS endpoint (wrong key or "
            "certificate, unknown or disabled device)."
        )
    if status == 404:
        raise SimulatorError("The hub does not know this device (404).")
    detail = body[:200].decode("utf-8", "replace").strip()
    raise SimulatorError(f"The hub answered {status}{f': {detail}' if detail else ''}.")


def _tls_context(ca_pem: str | None, x509: X509Identity | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    if x509 is not None:
        # The context reads the files now; they are gone when the block ends.
        with sdk_files(x509) as (cert_file, key_file, passphrase):
            context.load_cert_chain(cert_file, key_file, password=passphrase)
    return context


def base_url(host_name: str, port: int | None) -> str:
    """``https://<HostName>/`` for Azure; a local hub's REST port when it is known."""
    return f"https://{host_name}/" if port in (None, 443) else f"https://{host_name}:{port}/"
