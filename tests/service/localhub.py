"""An in-process local hub on loopback, for watcher and log tests."""

from __future__ import annotations

from pathlib import Path

from twin_explorer.localhub.runtime.server import HubServer


def start_server(data_dir: Path, rest_port: int = 0, *, mqtt: bool = False) -> HubServer:
    """A hub on loopback; ``mqtt`` also starts MQTT and the CONNECT proxy (OS ports)."""
    port = 0 if mqtt else None
    return HubServer(data_dir, rest_port=rest_port, mqtt_port=port, proxy_port=port)
