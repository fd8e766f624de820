"""``HubCore``: the one object the network shells call. Everything the hub does, no I/O
besides its SQLite file.

Synchronous on purpose: each operation is a few SQLite statements (well under a
millisecond), so the asyncio shells call it directly from the event loop thread. Use it
from one thread at a time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin_explorer.connection.sas import generate_key
from twin_explorer.connection.strings import build_device, build_module, build_service
from twin_explorer.localhub.core import auth
from twin_explorer.localhub.core.auth import DEFAULT_POLICIES, Identity, Policy, Right
from twin_explorer.localhub.core.bulk_registry import BulkRegistryOps
from twin_explorer.localhub.core.identity import validate_id
from twin_explorer.localhub.core.querying import QueryPage, run_query
from twin_explorer.localhub.errors import AuthError, HubError
from twin_explorer.localhub.store.sqlite import Store


@dataclass(frozen=True)
class RegistryStatistics:
    total: int
    enabled: int

    def to_json(self) -> dict[str, int]:
        return {
            "totalDeviceCount": self.total,
            "enabledDeviceCount": self.enabled,
            "disabledDeviceCount": self.total - self.enabled,
        }


class HubCore(BulkRegistryOps):
    """Registry, twins, policies, auth decisions, telemetry, statistics and queries."""

    def __init__(
        self, store: Store, hostname: str, clock: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__(store, hostname, clock)
        self._policies: dict[str, Policy] = {}
        self._load_policies()
        self._token_key = self._secret("query_token_key")
        # A hub that just started has no connections, whatever the file says.
        store.reset_connections()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        hostname: str = "localhost",
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> HubCore:
        """Open (creating on first start) the hub in ``data_dir``."""
        return cls(Store.open(data_dir), hostname, clock)

    def close(self) -> None:
        self._flush_activity()
        self.store.close()

    def __enter__(self) -> HubCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- policies -----------------------------------------------------------------------

    def _load_policies(self) -> None:
        rows = self.store.policies()
        if not rows:  # first start: the default policies with fresh keys (D.3)
            with self.store.transaction():
                for name, rights in DEFAULT_POLICIES.items():
                    policy = Policy(name, generate_key(), generate_key(), rights)
                    self.store.put_policy(name, *policy.keys, policy.rights_text())
            rows = self.store.policies()
        self._policies = {
            name: Policy(name, primary, secondary, Policy.parse_rights(rights))
            for name, primary, secondary, rights in rows
        }

    def _secret(self, name: str) -> bytes:
        """A random per-hub secret kept in meta (created on first start)."""
        value = self.store.get_meta(name)
        if value is None:
            value = secrets.token_hex(32)
            with self.store.transaction():
                self.store.set_meta(name, value)
        return bytes.fromhex(value)

    def policies(self) -> list[Policy]:
        return list(self._policies.values())

    def policy_keys(self, name: str) -> tuple[str, str]:
        """(primary, secondary) key of a policy; KeyError if there is no such policy."""
        policy = self._policies.get(name)
        if policy is None:
            raise KeyError(f"no shared access policy {name!r}")
        return policy.keys

    def service_connection_string(
        self, policy: str = "iothubowner", host_with_port: str | None = None
    ) -> str:
        """``HostName=..;SharedAccessKeyName=..;SharedAccessKey=..`` for the service SDK."""
        return build_service(host_with_port or self.hostname, policy, self.policy_keys(policy)[0])

    def identity_connection_string(
        self, device_id: str, module_id: str | None = None, gateway_host: str | None = None
    ) -> str:
        """A device or module connection string with its primary key (SAS identities)."""
        found = self.get_module(device_id, module_id) if module_id else self.get_device(device_id)
        key = found["authentication"]["symmetricKey"]["primaryKey"]
        if key is None:
            raise ValueError(f"{found.get('moduleId') or device_id!r} has no symmetric key")
        if module_id:
            return build_module(self.hostname, device_id, module_id, key, gateway_host=gateway_host)
        return build_device(self.hostname, device_id, key, gateway_host=gateway_host)

    # -- authentication and authorization -----------------------------------------------

    def authorize_service(
        self, authorization_header: str | None, right: Right | Iterable[Right]
    ) -> str:
        """The policy name a REST Authorization header grants for ``right``; AuthError (401)
        otherwise. Several rights mean any one suffices (query: ServiceConnect or
        RegistryRead, B.9)."""
        return auth.authorize_service(
            self._policies, self.hostname, authorization_header, right, self._seconds()
        )

    def authenticate_device(
        self, client_id: str, username: str | None, password: str | None
    ) -> Identity:
        """Decide an MQTT CONNECT (A.2, A.3, D.3); AuthError means CONNACK 5."""
        device_id, module_id = auth.split_client_id(client_id)
        try:
            validate_id(device_id, "device id")
            if module_id is not None:
                validate_id(module_id, "module id")
        except HubError as exc:
            raise AuthError(f"The client id {client_id!r} is not valid: {exc.message}") from None
        auth.check_username(username, client_id)
        device = self.store.get_device(device_id)
        if device is None:
            raise AuthError(f"Device {device_id!r} is not registered.")
        if device["status"] != "enabled":
            raise AuthError(f"Device {device_id!r} is disabled.")
        target = device
        if module_id is not None:
            module = self.store.get_module(device_id, module_id)
            if module is None:
                raise AuthError(f"Module {client_id!r} is not registered.")
            target = module
        return auth.check_device_password(
            password,
            Identity(device_id, module_id),
            target["authentication"],
            self._policies,
            self._seconds(),
        )

    # -- connections, activity and telemetry --------------------------------------------

    def set_connected(
        self, device_id: str, module_id: str | None, connected: bool, now: str | None = None
    ) -> None:
        """connectionState Connected at CONNACK 0, Disconnected on close (D.1)."""
        when = now or self._now()
        key = (device_id, module_id or "")
        pending = self._pending_activity.pop(key, None)
        activity = when if connected else pending
        state = "Connected" if connected else "Disconnected"
        # Not fsynced: a restarted hub marks everyone Disconnected anyway.
        with self.store.transaction(durable=False):
            self.store.set_connection(device_id, module_id or "", state, when, activity)

    def record_telemetry(
        self,
        device_id: str,
        module_id: str | None,
        properties: dict[str, Any],
        system_properties: dict[str, Any],
        body: bytes,
        now: str | None = None,
    ) -> None:
        """Keep a D2C message in the identity's in-memory ring and count it."""
        when = now or self._now()
        self.telemetry_buffer.record(
            device_id, module_id, properties, system_properties, body, when
        )
        self.touch(device_id, module_id, when)

    def telemetry(
        self, device_id: str, module_id: str | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` messages of an identity, oldest first."""
        return self.telemetry_buffer.recent(device_id, module_id, limit)

    def telemetry_count(self, device_id: str, module_id: str | None = None) -> int:
        """Messages received from an identity since the hub started."""
        return self.telemetry_buffer.count(device_id, module_id)

    # -- statistics and queries ---------------------------------------------------------

    def registry_statistics(self) -> dict[str, int]:
        """GET /statistics/devices."""
        return RegistryStatistics(*self.store.device_counts()).to_json()

    def service_statistics(self) -> dict[str, int]:
        """GET /statistics/service."""
        return {"connectedDeviceCount": self.store.connected_devices()}

    def query(
        self, text: str, max_item_count: int | str | None = None, continuation: str | None = None
    ) -> QueryPage:
        """POST /devices/query: one page (C.8). ``max_item_count`` is the
        ``x-ms-max-item-count`` header as sent (default 100, capped at 1000)."""
        self._flush_activity()
        return run_query(
            self.store.conn, text, max_item_count, continuation, token_key=self._token_key
        )
