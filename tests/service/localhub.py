"""An in-process local hub and service connections to it, for watcher and log tests."""

from __future__ import annotations

from pathlib import Path

from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.hub import HubService


class QuickService(HubService):
    """The real service, with the SDK's own connection retries off: they spend about
    5 s on each refused call, which only slows the tests of a hub going away down."""

    def _manager(self):
        manager = super()._manager()
        manager.protocol.config.retry_policy.retries = 0
        return manager


def start_server(data_dir: Path, rest_port: int = 0, *, mqtt: bool = False) -> HubServer:
    """A hub on loopback; ``mqtt`` also starts MQTT and the CONNECT proxy (OS ports)."""
    port = 0 if mqtt else None
    return HubServer(data_dir, rest_port=rest_port, mqtt_port=port, proxy_port=port)


def service_for(server: HubServer) -> HubService:
    return QuickService(
        server.service_connection_string(),
        ca_cert=str(server.certificates.ca_cert),
        use_env_proxies=False,
    )
