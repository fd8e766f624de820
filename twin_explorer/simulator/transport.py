"""How a simulated module reaches its hub: trust and route, as client options.

The device SDK always dials port 8883 on the connection string's HostName (A.1). Real
Azure needs nothing more (system trust, direct). A local hub listening elsewhere is
reached through its HTTP CONNECT proxy with ``proxy_options``, and is trusted through its
own CA, given to the SDK as PEM *text* (``server_verification_cert``). paho needs PySocks
for any proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin_explorer.connection.hosts import HostError, parse_host_port
from twin_explorer.simulator.errors import InvalidSettings

DEVICE_PORT = 8883  # hard-coded in the SDK (A.1)


@dataclass(frozen=True)
class Transport:
    ca_pem: str | None = None  # None: the system's trusted CAs
    proxy: tuple[str, int] | None = None  # HTTP CONNECT proxy (host, port)
    keep_alive: int = 60
    retry_interval: int = 10  # seconds between reconnect attempts after the first
    # The hub's device HTTPS port (C2D settled by hand); None: 443, as on Azure. A local
    # hub's REST port is reached directly, never through the proxy.
    https_port: int | None = None

    @property
    def route(self) -> str:
        """Where the connection goes, in words, for status lines."""
        trust = "the given CA" if self.ca_pem else "system trust"
        if self.proxy:
            return f"via proxy {self.proxy[0]}:{self.proxy[1]}, {trust}"
        return f"directly on port {DEVICE_PORT}, {trust}"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``create_from_connection_string``."""
        kwargs: dict[str, Any] = {
            "keep_alive": self.keep_alive,
            "connection_retry_interval": self.retry_interval,
            # The module fetches the twin itself after a reconnect and compares $version,
            # so it can tell a change made while away from a full-document refresh (A.8).
            "ensure_desired_properties": False,
        }
        if self.ca_pem:
            kwargs["server_verification_cert"] = self.ca_pem
        if self.proxy:
            from azure.iot.device import ProxyOptions

            kwargs["proxy_options"] = ProxyOptions("HTTP", self.proxy[0], self.proxy[1])
        return kwargs

    @classmethod
    def for_local_hub(
        cls,
        ca_cert_path: str | Path,
        mqtt_port: int | None,
        proxy_port: int | None,
        *,
        proxy_host: str = "127.0.0.1",
        **options: Any,
    ) -> Transport:
        """A local hub: its CA; direct when it listens on 8883, else through its proxy."""
        ca = read_ca(ca_cert_path)
        if mqtt_port == DEVICE_PORT:
            return cls(ca_pem=ca, **options)
        if proxy_port is None:
            raise InvalidSettings(
                "The local hub listens for devices on a port other than 8883 and has no "
                "proxy, so the device SDK cannot reach it.",
                hint="Start it with --mqtt-port 8883 or with a proxy port.",
            )
        return cls(ca_pem=ca, proxy=(proxy_host, proxy_port), **options)


def read_ca(path: str | Path) -> str:
    """The PEM text of a CA file (the SDK wants text, not a path)."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSettings(f"Could not read the CA certificate {path}: {exc}.") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InvalidSettings(f"{path} holds no PEM certificate.")
    return text


def parse_proxy(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) -> (host, port)."""
    try:
        host, port = parse_host_port(text.strip())
    except HostError as exc:
        raise InvalidSettings(f"Not a proxy address: {exc}.") from None
    if not host or port is None:
        raise InvalidSettings("A proxy is given as HOST:PORT, for example 127.0.0.1:8880.")
    return host.strip("[]"), port
