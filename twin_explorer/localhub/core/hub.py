"""``HubCore``: the one object the transports call. Everything the hub does, no I/O
besides its SQLite file.

It composes its parts and hands each the shared :class:`CoreContext`: ``registry``,
``twins``, ``bulk``, ``presence`` (who is online), ``methods`` (direct method routing),
``devices`` (device operations), ``c2d`` (cloud-to-device queues), ``device_messages``
(telemetry in and C2D polling for HTTPS devices), ``events`` (the bus
of hub events), ``event_log`` (the durable log the bus feeds) and ``commits`` (its group
commit, which acknowledgements of telemetry wait for). The methods below are
the service-side surface REST and the app use, each one line over a part.

Synchronous on purpose: each operation is a few SQLite statements (well under a
millisecond), so the asyncio shells call it directly from the event loop thread. Use it
from one thread at a time.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from twin_explorer.connection import sas
from twin_explorer.connection.sas import generate_key
from twin_explorer.connection.strings import build_device, build_module, build_service
from twin_explorer.localhub.core import auth, eventhub
from twin_explorer.localhub.core.access import LOCAL_AUTH_DISABLED, ServiceAccess
from twin_explorer.localhub.core.auth import DEFAULT_POLICIES, Identity, Policy, Right
from twin_explorer.localhub.core.bulk_registry import BulkError, BulkRegistry
from twin_explorer.localhub.core.c2d import DEFAULT_TTL_NS, C2DMessage, C2DQueues
from twin_explorer.localhub.core.ca_certificates import CaCertificates
from twin_explorer.localhub.core.cert_auth import CaTrust
from twin_explorer.localhub.core.configurations import Configurations
from twin_explorer.localhub.core.context import CoreContext, RemovalReason
from twin_explorer.localhub.core.device_messages import DeviceMessages
from twin_explorer.localhub.core.device_ops import DeviceOps
from twin_explorer.localhub.core.entra import EntraAuthority, new_signing_key
from twin_explorer.localhub.core.eventhub import EventHubEndpoint
from twin_explorer.localhub.core.events import (
    Connected,
    Disconnected,
    HubEvent,
    IdentityCreated,
    TelemetryReceived,
)
from twin_explorer.localhub.core.feedback import C2DFeedback
from twin_explorer.localhub.core.group_commit import GroupCommit
from twin_explorer.localhub.core.identity import validate_id
from twin_explorer.localhub.core.jobs import Jobs
from twin_explorer.localhub.core.methods import DirectMethods
from twin_explorer.localhub.core.presence import Presence
from twin_explorer.localhub.core.querying import QueryPage, QueryReader, run_query
from twin_explorer.localhub.core.registry import Registry
from twin_explorer.localhub.core.roles import Permission
from twin_explorer.localhub.core.twins import Twins
from twin_explorer.localhub.errors import AuthError, HubError
from twin_explorer.localhub.store.entra_files import RoleAssignments, signing_key
from twin_explorer.localhub.store.event_log import EventLog
from twin_explorer.localhub.store.sqlite import Store
from twin_explorer.twin.identity import identity_path

logger = logging.getLogger(__name__)

TELEMETRY = TelemetryReceived.kind


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


class HubCore:
    """Registry, twins, policies, auth decisions, presence, methods, events and queries."""

    def __init__(
        self,
        store: Store,
        hostname: str,
        clock: Callable[[], int] = time.time_ns,
        signing_key_pem: Callable[[], bytes] = new_signing_key,
    ) -> None:
        self.ctx = ctx = CoreContext(store, hostname, clock)
        self.store = store
        self.hostname = hostname
        self.events = ctx.bus
        self.registry = Registry(ctx)
        self.twins = Twins(ctx)
        self.bulk = BulkRegistry(ctx, self.registry, self.twins)
        self.event_log = EventLog(store)
        self.commits = GroupCommit(self.event_log)
        self.eventhub = EventHubEndpoint(store, self.event_log, hostname.split(".", 1)[0])
        self._senders: dict[tuple[str, str | None], dict[str, str]] = {}
        self.methods = DirectMethods(self._method_target)
        self.presence = Presence(self._connection_changed, self._target_ready)
        self.devices = DeviceOps(
            self.twins, self.methods, self.record_telemetry, ctx.touch, self.commits.after
        )
        self.feedback = C2DFeedback(ctx)
        self.c2d = C2DQueues(clock, on_outcome=self.feedback.outcome)
        self.device_messages = DeviceMessages(self.devices, self.c2d, self._offer_c2d)
        self._policies: dict[str, Policy] = {}
        self._load_policies()
        self.query_token_key = self._secret("query_token_key")
        self.jobs = Jobs(ctx, self.twins, self.methods, self.query_token_key, store.open_reader)
        self.configurations = Configurations(ctx, self.twins, self.registry, store.open_reader)
        # Entra ID: the authority (its key is the data folder's, or one for this run).
        self.entra = EntraAuthority(store, signing_key_pem, lambda: clock() / 1e9)
        self.access = ServiceAccess(
            lambda: self._policies, hostname, self.entra, RoleAssignments(store), ctx.seconds
        )
        self.certificates = CaCertificates(
            store, lambda: datetime.fromtimestamp(ctx.seconds(), UTC)
        )
        # A hub that just started has no connections, whatever the file says.
        store.reset_connections()
        ctx.on_desired_patch(self._deliver_desired)
        ctx.on_identity_removed(self._identity_removed)
        self.events.subscribe(self._log_event)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        hostname: str = "localhost",
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> HubCore:
        """Open (creating on first start) the hub in ``data_dir``."""
        store = Store.open(data_dir)
        return cls(
            store, hostname, clock, functools.partial(signing_key, data_dir, new_signing_key)
        )

    def close(self) -> None:
        self.methods.close()
        self.commits.close()
        self.ctx.flush_activity()
        self.event_log.close()
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

    def eventhub_connection_string(self, policy: str = "service") -> str:
        """``Endpoint=sb://<host>/;...;EntityPath=<hub>`` for Event Hubs clients."""
        key = self.policy_keys(policy)[0]
        return eventhub.connection_string(self.hostname, policy, key, self.eventhub.name)

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
            self._policies, self.hostname, authorization_header, right, self.ctx.seconds()
        )

    def authorize_request(
        self,
        authorization_header: str | None,
        right: Right | Iterable[Right],
        permission: Permission,
        method: str,
        path: str,
    ) -> str:
        """Who a REST request is: SAS (a policy's ``right``) or an Entra ID Bearer token
        (a role granting ``permission``); 401 otherwise."""
        return self.access.authorize(authorization_header, right, permission, method, path)

    @property
    def local_auth_disabled(self) -> bool:
        """IoT Hub's disableLocalAuth: no policy (hub-scoped) key authenticates."""
        return self.access.local_auth_disabled

    @local_auth_disabled.setter
    def local_auth_disabled(self, value: bool) -> None:
        self.access.local_auth_disabled = value

    def authenticate_device(
        self,
        client_id: str,
        username: str | None,
        password: str | None,
        certificates: Sequence[x509.Certificate] = (),
    ) -> Identity:
        """Who a connecting device or module is: its client id (``d`` or ``d/m``), the
        user name IoT Hub expects and a SAS token, or ``password`` None and the TLS client
        ``certificates`` (leaf first) with X.509 (A.2, A.3, A.14, D.3). Every device
        transport calls this. AuthError, saying why, when it may not connect."""
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
        identity = auth.check_device_credentials(
            password,
            certificates,
            Identity(device_id, module_id),
            target["authentication"],
            self._policies,
            CaTrust(*self.certificates.trust()),
            self.ctx.seconds(),
        )
        if identity.policy is not None and self.local_auth_disabled:
            raise AuthError(LOCAL_AUTH_DISABLED)  # a policy key is hub-scoped; its own is not
        return identity

    def authenticate_token(self, token: str) -> auth.TokenGrant:
        """What a SAS token presented on a connection allows (AMQP CBS and SASL PLAIN):
        a device or module token speaks as that identity (checked as a device login is),
        a hub-wide one grants its policy's rights. AuthError otherwise."""
        try:
            scope = auth.resource_identity(sas.parse_token(token).resource)
        except sas.SasTokenError as exc:
            raise AuthError(f"The token is not a valid SharedAccessSignature: {exc}.") from None
        if scope is None:
            if self.local_auth_disabled:  # a hub-wide token is a policy's: hub-scoped
                raise AuthError(LOCAL_AUTH_DISABLED)
            return auth.check_hub_token(self._policies, self.hostname, token, self.ctx.seconds())
        identity = self.authenticate_device(identity_path(*scope), None, token)
        rights = frozenset({Right.DEVICE_CONNECT})
        return auth.TokenGrant(auth.token_expiry(token), identity, identity.policy, rights)

    # -- connections, activity and telemetry --------------------------------------------

    def set_connected(
        self, device_id: str, module_id: str | None, connected: bool, now: str | None = None
    ) -> None:
        """connectionState Connected at connect, Disconnected on close (D.1)."""
        self.ctx.set_connected(device_id, module_id, connected, now or self.ctx.now())

    def _connection_changed(self, identity: Identity, connected: bool) -> None:
        when = self.ctx.now()
        try:
            self.set_connected(identity.device_id, identity.module_id, connected, when)
        except Exception:  # a closing core must not take the connection bookkeeping down
            logger.exception("recording %s as connected=%s failed", identity, connected)
        kind = Connected if connected else Disconnected
        self.events.publish(kind(identity.device_id, identity.module_id, when))

    def touch(self, device_id: str, module_id: str | None, now: str | None = None) -> None:
        """Note traffic from an identity: lastActivityTime, written behind."""
        self.ctx.touch(device_id, module_id, now)

    def flush(self) -> None:
        """Write pending activity and events now (the runtime calls this on a timer)."""
        self.ctx.flush_activity()
        self.event_log.flush()
        self.c2d.expire_due()

    def record_telemetry(
        self,
        device_id: str,
        module_id: str | None,
        properties: dict[str, Any],
        system_properties: dict[str, Any],
        body: bytes,
        now: str | None = None,
    ) -> None:
        """Publish a D2C message (the event log keeps it) and note the activity."""
        when = now or self.ctx.now()
        self.events.publish(
            TelemetryReceived(device_id, module_id, when, properties, system_properties, body)
        )
        self.ctx.touch(device_id, module_id, when)

    def telemetry(
        self, device_id: str, module_id: str | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` messages of an identity kept in the log, oldest first."""
        return [
            {
                "sequence": event.identity_sequence,
                "enqueuedTime": event.system_properties.get("iothub-enqueuedtime"),
                "deviceId": event.device_id,
                "moduleId": event.module_id,
                "partition": event.partition,
                "sequenceNumber": event.sequence,
                "offset": str(event.offset),
                "properties": event.properties,
                "systemProperties": {
                    k: v
                    for k, v in event.system_properties.items()
                    if not k.startswith("iothub-")  # the built-in endpoint's annotations
                },
                "body": event.body,
            }
            for event in self.event_log.recent(TELEMETRY, device_id, module_id, limit)
        ]

    def telemetry_count(self, device_id: str, module_id: str | None = None) -> int:
        """Messages received from an identity (while it exists)."""
        return self.event_log.count(TELEMETRY, device_id, module_id)

    def _log_event(self, event: HubEvent) -> None:
        """Every hub event goes to the durable log, as IoT Hub routes them to its endpoint."""
        if isinstance(event, TelemetryReceived):
            properties, system, body = event.properties, event.system_properties, event.body
            system = {**system, **self._sender_annotations(event.device_id, event.module_id)}
            system["iothub-enqueuedtime"] = event.time
        elif not self.eventhub.routed(event.kind):
            return  # a notification no route takes
        else:
            properties, system, body = eventhub.notification(
                event, self.eventhub.name, self._notification_body(event)
            )
        self.event_log.append(
            event.kind,
            event.device_id,
            event.module_id,
            self.ctx.now_ns(),
            properties,
            system,
            body,
        )

    def _notification_body(self, event: HubEvent) -> dict[str, Any]:
        """The body IoT Hub gives a lifecycle notification: the identity's twin."""
        if not isinstance(event, IdentityCreated):
            return {}
        try:
            return self.twins.get_twin(event.device_id, event.module_id)
        except HubError:
            return {}

    def _sender_annotations(self, device_id: str, module_id: str | None) -> dict[str, str]:
        """IoT Hub's auth method and generation id of a sender, cached per identity."""
        key = (device_id, module_id)
        found = self._senders.get(key)
        if found is None:
            try:
                identity = self.registry.get_module(device_id, module_id) if module_id else (
                    self.registry.get_device(device_id)
                )
            except HubError:
                return {}
            found = eventhub.sender_annotations(identity, module_id is not None)
            if len(self._senders) >= 10_000:
                self._senders.clear()
            self._senders[key] = found
        return found

    # -- what the core delivers to connections ------------------------------------------

    def _method_target(self, client_id: str) -> Any:
        return self.presence.method_target(client_id)

    def _target_ready(self, client_id: str) -> None:
        """A connection came or subscribed: waiting method calls and C2D messages go."""
        self.methods.target_ready(client_id)
        if "/" not in client_id:  # modules get no cloud-to-device messages
            self._offer_c2d(client_id)

    def _offer_c2d(self, device_id: str) -> None:
        """Hand the device's waiting C2D messages to its connection, if it takes them."""
        target = self.presence.target(device_id)
        while target is not None and target.accepts_c2d:
            message = self.c2d.receive(device_id)
            if message is None:
                return
            assert message.lock_token is not None
            if not target.deliver_c2d(message):
                self.c2d.abandon(device_id, message.lock_token)
                return

    def send_c2d(
        self,
        device_id: str,
        body: bytes,
        properties: dict[str, str] | None = None,
        *,
        message_id: str | None = None,
        ttl_ns: int = DEFAULT_TTL_NS,
    ) -> C2DMessage:
        """Queue a cloud-to-device message and deliver it if the device is connected and
        subscribed. 404 for no such device, 403004 when its queue is full."""
        self.ctx.device(device_id)
        message = self.c2d.enqueue(
            device_id, body, properties, message_id=message_id, ttl_ns=ttl_ns
        )
        self._offer_c2d(device_id)
        return message

    def complete_c2d(self, device_id: str, lock_token: str) -> bool:
        """The device took a delivered message; False if its lock had run out (the
        message went back to the queue and comes again)."""
        try:
            self.c2d.complete(device_id, lock_token)
        except HubError:
            logger.info("%s acknowledged a C2D message after its lock ran out", device_id)
            return False
        return True

    def reject_c2d(self, device_id: str, lock_token: str) -> bool:
        """The device refused a delivered message: dead-lettered. False if its lock ran out."""
        return self._settle_c2d(self.c2d.reject, device_id, lock_token)

    def abandon_c2d(self, device_id: str, lock_token: str) -> bool:
        """The device gave a delivered message back: it comes again (up to the delivery
        count). False if its lock had run out."""
        settled = self._settle_c2d(self.c2d.abandon, device_id, lock_token)
        self._offer_c2d(device_id)
        return settled

    def _settle_c2d(
        self, settle: Callable[[str, str], C2DMessage], device_id: str, lock_token: str
    ) -> bool:
        try:
            settle(device_id, lock_token)
        except HubError:
            logger.info("%s settled a C2D message after its lock ran out", device_id)
            return False
        return True

    def _deliver_desired(self, device_id: str, module_id: str | None, body: dict) -> None:
        """Every desired change goes to the identity's connection (C.7) and the log."""
        target = self.presence.target(identity_path(device_id, module_id))
        if target is not None:
            target.deliver_desired(body)

    def _identity_removed(
        self, device_id: str, module_id: str | None, reason: RemovalReason
    ) -> None:
        """Deleted, disabled or re-keyed: its connections go; deleted also forgets it."""
        self.presence.drop(device_id, module_id, reason)
        self._senders.clear()
        if reason is RemovalReason.DELETED:
            self.event_log.forget(TELEMETRY, device_id, module_id)
            if module_id is None:
                self.c2d.purge(device_id)

    # -- the service-side surface, one line over each part ------------------------------

    def put_device(self, device_id: str, body: object, if_match: str | None) -> dict[str, Any]:
        return self.registry.put_device(device_id, body, if_match)

    def get_device(self, device_id: str) -> dict[str, Any]:
        return self._c2d_count(self.registry.get_device(device_id))

    def delete_device(self, device_id: str, if_match: str | None) -> None:
        self.registry.delete_device(device_id, if_match)

    def list_devices(self, top: int | None = None) -> list[dict[str, Any]]:
        return [self._c2d_count(device) for device in self.registry.list_devices(top)]

    def put_module(
        self, device_id: str, module_id: str, body: object, if_match: str | None
    ) -> tuple[dict[str, Any], bool]:
        return self.registry.put_module(device_id, module_id, body, if_match)

    def get_module(self, device_id: str, module_id: str) -> dict[str, Any]:
        return self.registry.get_module(device_id, module_id)

    def delete_module(self, device_id: str, module_id: str, if_match: str | None) -> None:
        self.registry.delete_module(device_id, module_id, if_match)

    def list_modules(self, device_id: str) -> list[dict[str, Any]]:
        return self.registry.list_modules(device_id)

    def bulk_registry(self, entries: list[object]) -> list[BulkError]:
        return self.bulk.bulk_registry(entries)

    def get_twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        twin = self.twins.get_twin(device_id, module_id)
        return twin if module_id else self._c2d_count(twin)

    def _c2d_count(self, document: dict[str, Any]) -> dict[str, Any]:
        """``cloudToDeviceMessageCount``: the messages the device's C2D queue holds now."""
        if "cloudToDeviceMessageCount" in document:
            document["cloudToDeviceMessageCount"] = self.c2d.depth(document["deviceId"])
        return document

    def patch_twin(
        self, device_id: str, module_id: str | None, body: object, if_match: str | None
    ) -> dict[str, Any]:
        return self.twins.patch_twin(device_id, module_id, body, if_match)

    def replace_twin(
        self, device_id: str, module_id: str | None, body: object, if_match: str | None
    ) -> dict[str, Any]:
        return self.twins.replace_twin(device_id, module_id, body, if_match)

    def device_twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        return self.twins.device_twin(device_id, module_id)

    def patch_reported(self, device_id: str, module_id: str | None, patch: object) -> int:
        return self.twins.patch_reported(device_id, module_id, patch)

    def on_desired_patch(self, callback: Any) -> None:
        self.ctx.on_desired_patch(callback)

    def on_identity_removed(self, callback: Any) -> None:
        self.ctx.on_identity_removed(callback)

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
        self.ctx.flush_activity()
        return run_query(
            self.store.conn, text, max_item_count, continuation, token_key=self.query_token_key
        )

    def query_reader(self) -> QueryReader:
        """Query pages for a worker thread (see transports/rest/queries.py)."""
        return QueryReader(self.store.open_reader, self.query_token_key)
