"""``HubService``: the app's async view of one hub, over azure-iot-hub.

The SDK is blocking (msrest over requests), so every call runs on a small thread pool
owned by the service and never on the UI loop. Each worker thread has its own
``IoTHubRegistryManager``: requests sessions are not meant to be shared across threads.
Those sessions are kept alive between calls. By default msrest closes its session after
every call, so each call paid a new TCP + TLS handshake: ~12 ms of a ~14 ms twin GET.
Twins and query pages are read as the raw JSON the hub sent, so fields the SDK models do
not know (``modelId``, ``$metadata`` details) are never lost on the way to the editor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from azure.iot.hub import IoTHubJobManager, IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, JobRequest
from msrest.exceptions import HttpOperationError

from twin_explorer.connection import strings
from twin_explorer.connection.hub_certificates import HubCertificates
from twin_explorer.connection.hub_roles import HubRoles
from twin_explorer.service import errors
from twin_explorer.service.models import (
    Auth,
    CaAuth,
    HubStatistics,
    Identity,
    MethodResult,
    QueryPage,
    SasAuth,
    Twin,
    X509Auth,
)
from twin_explorer.service.translate import Context, identity_label, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

# msrest waits 100 s by default; a desktop app should give up sooner on ordinary calls.
REQUEST_TIMEOUT = 30.0
CLOSE_WAIT = 5.0  # how long aclose() waits for calls already on the wire


def _quoted(etag: str | None) -> str:
    # IoT Hub honours only quoted etags (B.3); None means "whatever is there".
    if not etag:
        return '"*"'
    return etag if etag.startswith('"') else f'"{etag}"'


class HubService:
    def __init__(
        self,
        connection_string: str,
        *,
        ca_cert: str | None = None,
        proxy: str | None = None,
        use_env_proxies: bool = True,
        max_workers: int = 4,
        credential: tuple[str, Any] | None = None,
    ) -> None:
        # An Entra ID credential with its host (from_credential), or a connection string.
        self._credential: Any = None
        if credential is not None:
            host, self._credential = credential
            self._cs = strings.ConnectionString(host_name=host)
        else:
            self._cs = strings.parse(connection_string)
        if self._cs.kind != "service":
            raise errors.InvalidRequest(
                "This is a device or module connection string; a hub connection needs a "
                "service connection string (HostName, SharedAccessKeyName, SharedAccessKey)."
            )
        self._connection_string = connection_string
        self._ca_cert = ca_cert
        self._proxy = proxy
        self._use_env_proxies = use_env_proxies
        self._local = threading.local()
        self._sessions: list[requests.Session] = []  # one per worker; closed by aclose()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hub")
        self._closed = False

    @classmethod
    def from_credential(cls, host: str, credential: Any, **options: Any) -> HubService:
        """A service signed in with Microsoft Entra ID: ``credential`` is an azure-identity
        credential, used through the SDK's ``from_token_credential`` (no key anywhere).
        ``options`` are the constructor's (ca_cert, use_env_proxies, ...)."""
        return cls("", credential=(host, credential), **options)

    @property
    def signed_in(self) -> bool:
        """True for an Entra ID connection (tokens, not a shared access key)."""
        return self._credential is not None

    @property
    def credential(self) -> Any:
        """The Entra ID credential (None with a shared access key)."""
        return self._credential

    # -- identity of the connection ------------------------------------------------------

    @property
    def host(self) -> str:
        """The HostName as given (may carry a port for a local hub)."""
        return self._cs.host_name

    def hub_certificates(self) -> HubCertificates:
        """The local hub's CA certificate routes, with this connection's policy and trust."""
        return HubCertificates(self._connection_string, self._ca_cert)

    def hub_roles(self) -> HubRoles:
        """The local hub's role assignment routes, with this connection's policy and trust."""
        return HubRoles(self._connection_string, self._ca_cert)

    @property
    def device_host(self) -> str:
        """The host devices put in their connection strings: never a port (A.1)."""
        return self._cs.host

    @property
    def policy(self) -> str:
        return self._cs.shared_access_key_name or ""

    # -- lifetime ------------------------------------------------------------------------

    async def aclose(self, *, wait: float = CLOSE_WAIT) -> None:
        """Drop queued calls and wait (up to ``wait`` seconds) for calls on the wire.

        Waiting matters: a worker that finishes later would hand its result to an event
        loop that may be gone by then. A call still running after ``wait`` (a long
        direct method) is abandoned; its thread ends with the call's own timeout.
        """
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        loop = asyncio.get_running_loop()
        idle = loop.create_future()

        def join_workers() -> None:
            self._executor.shutdown(wait=True)
            with contextlib.suppress(RuntimeError):  # the loop may be gone by now
                loop.call_soon_threadsafe(lambda: idle.done() or idle.set_result(None))

        threading.Thread(target=join_workers, name="hub-close", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await asyncio.shield(idle)
        if idle.done():  # else a call still runs on a session: its thread's end frees it
            for session in self._sessions:
                _close_session(session)

    async def __aenter__(self) -> HubService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _manager(self) -> IoTHubRegistryManager:
        return self._per_worker("manager", IoTHubRegistryManager)

    def _job_manager(self) -> IoTHubJobManager:
        return self._per_worker("jobs", IoTHubJobManager)

    def _per_worker(self, name: str, cls: type[T]) -> T:
        """This worker thread's SDK client of ``cls``, made on first use."""
        manager = getattr(self._local, name, None)
        if manager is None:
            if self._credential is not None:
                # Asks for a token at once (for its AMQP client): we are on a worker.
                manager = cls.from_token_credential(  # type: ignore[attr-defined]
                    self._cs.host_name, self._credential
                )
            else:
                manager = cls.from_connection_string(self._connection_string)  # type: ignore[attr-defined]
            setattr(self._local, name, self._configure(manager))
        return manager

    def _configure(self, manager: Any) -> Any:
        """Timeouts, trust, proxies and a kept-alive session for an SDK manager."""
        config = manager.protocol.config
        config.connection.timeout = REQUEST_TIMEOUT
        if self._ca_cert:
            config.connection.verify = self._ca_cert
        config.proxies.use_env_settings = self._use_env_proxies
        if self._proxy:
            config.proxies.add("https", self._proxy)
        config.keep_alive = True  # see the module docstring
        # msrest keeps one requests session per thread; this is the worker's.
        self._sessions.append(config.pipeline._sender.driver.session)
        return manager

    async def _call(
        self, ctx: Context, fn: Callable[[Any], T], manager: Callable[[], Any] | None = None
    ) -> T:
        if self._closed:
            raise errors.ServiceError(f"The connection to {self.host} is closed.")
        loop = asyncio.get_running_loop()
        which = manager or self._manager

        def run() -> T:
            return fn(which())

        try:
            return await loop.run_in_executor(self._executor, run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = translate(exc, ctx)
            log.info("%s (%s)", error.text, type(exc).__name__)
            raise error from None

    def _ctx(self, action: str, device_id: str | None = None, module_id: str | None = None):
        return Context(
            hub=self.host,
            action=action,
            identity=identity_label(device_id, module_id),
            policy=self.policy,
        )

    # -- connection check ----------------------------------------------------------------

    async def check(self) -> HubStatistics:
        """One cheap authenticated call: proves host, TLS trust, key and policy."""
        return await self.statistics()

    async def statistics(self) -> HubStatistics:
        def fetch(rm: IoTHubRegistryManager) -> HubStatistics:
            stats = rm.get_device_registry_statistics()
            return HubStatistics(
                total_devices=stats.total_device_count or 0,
                enabled_devices=stats.enabled_device_count or 0,
                disabled_devices=stats.disabled_device_count or 0,
            )

        return await self._call(self._ctx("read the registry statistics"), fetch)

    # -- devices -------------------------------------------------------------------------

    async def get_device(self, device_id: str) -> Identity:
        def fetch(rm: IoTHubRegistryManager) -> Identity:
            return _identity(rm.get_device(device_id))

        return await self._call(self._ctx("read the device", device_id), fetch)

    async def create_device(
        self,
        device_id: str,
        auth: Auth | None = None,
        *,
        enabled: bool = True,
        iot_edge: bool = False,
    ) -> Identity:
        auth = auth or SasAuth()
        status = "enabled" if enabled else "disabled"

        def create(rm: IoTHubRegistryManager) -> Identity:
            if isinstance(auth, X509Auth):
                device = rm.create_device_with_x509(
                    device_id,
                    auth.primary_thumbprint,
                    auth.secondary_thumbprint,
                    status,
                    iot_edge=iot_edge,
                )
            elif isinstance(auth, CaAuth):
                device = rm.create_device_with_certificate_authority(
                    device_id, status, iot_edge=iot_edge
                )
            else:
                device = rm.create_device_with_sas(
                    device_id, auth.primary_key, auth.secondary_key, status, iot_edge=iot_edge
                )
            return _identity(device)

        return await self._call(self._ctx("create the device", device_id), create)

    async def set_device_enabled(self, device: Identity, enabled: bool) -> Identity:
        """Enable or disable a device, keeping its authentication as it is."""
        body = dict(device.raw)
        body["status"] = "enabled" if enabled else "disabled"
        return await self._put_device(device, body, "change the device's status")

    async def regenerate_keys(self, identity: Identity, which: str = "both") -> Identity:
        """New random symmetric keys ("primary", "secondary" or "both")."""
        from twin_explorer.connection.sas import generate_key

        if identity.auth_type != "sas":
            raise errors.InvalidRequest(
                f"{identity.label} uses X.509 authentication; it has no keys to regenerate."
            )
        body = dict(identity.raw)
        keys = dict((body.get("authentication") or {}).get("symmetricKey") or {})
        if which in ("primary", "both"):
            keys["primaryKey"] = generate_key()
        if which in ("secondary", "both"):
            keys["secondaryKey"] = generate_key()
        body["authentication"] = {**(body.get("authentication") or {}), "symmetricKey": keys}
        if identity.is_module:
            return await self._put_module(identity, body, "regenerate the module's keys")
        return await self._put_device(identity, body, "regenerate the device's keys")

    async def _put_device(self, device: Identity, body: dict, action: str) -> Identity:
        def put(rm: IoTHubRegistryManager) -> Identity:
            raw = rm.protocol.devices.create_or_update_identity(
                device.device_id, body, _quoted(device.etag), raw=True
            )
            return Identity.from_json(raw.response.json())

        return await self._call(self._ctx(action, device.device_id), put)

    async def delete_device(self, device_id: str, etag: str | None = None) -> None:
        def delete(rm: IoTHubRegistryManager) -> None:
            rm.delete_device(device_id, etag)

        await self._call(self._ctx("delete the device", device_id), delete)

    # -- modules -------------------------------------------------------------------------

    async def list_modules(self, device_id: str) -> list[Identity]:
        def fetch(rm: IoTHubRegistryManager) -> list[Identity]:
            modules = [_identity(m) for m in rm.get_modules(device_id)]
            return sorted(modules, key=lambda m: m.module_id or "")

        return await self._call(self._ctx("list the modules", device_id), fetch)

    async def get_module(self, device_id: str, module_id: str) -> Identity:
        def fetch(rm: IoTHubRegistryManager) -> Identity:
            return _identity(rm.get_module(device_id, module_id))

        return await self._call(self._ctx("read the module", device_id, module_id), fetch)

    async def create_module(
        self, device_id: str, module_id: str, auth: Auth | None = None
    ) -> Identity:
        auth = auth or SasAuth()

        def create(rm: IoTHubRegistryManager) -> Identity:
            if isinstance(auth, X509Auth):
                module = rm.create_module_with_x509(
                    device_id, module_id, None, auth.primary_thumbprint, auth.secondary_thumbprint
                )
            elif isinstance(auth, CaAuth):
                module = rm.create_module_with_certificate_authority(device_id, module_id, None)
            else:
                module = rm.create_module_with_sas(
                    device_id, module_id, None, auth.primary_key, auth.secondary_key
                )
            return _identity(module)

        return await self._call(self._ctx("create the module", device_id, module_id), create)

    async def _put_module(self, module: Identity, body: dict, action: str) -> Identity:
        def put(rm: IoTHubRegistryManager) -> Identity:
            raw = rm.protocol.modules.create_or_update_identity(
                module.device_id, module.module_id, body, _quoted(module.etag), raw=True
            )
            return Identity.from_json(raw.response.json())

        return await self._call(self._ctx(action, module.device_id, module.module_id), put)

    async def delete_module(self, device_id: str, module_id: str, etag: str | None = None) -> None:
        def delete(rm: IoTHubRegistryManager) -> None:
            rm.delete_module(device_id, module_id, etag)

        await self._call(self._ctx("delete the module", device_id, module_id), delete)

    def connection_string(self, identity: Identity, which: str = "primary") -> str:
        """The device or module connection string, built from the host and its key."""
        key = identity.primary_key if which == "primary" else identity.secondary_key
        if identity.auth_type != "sas" or not key:
            raise errors.InvalidRequest(
                f"{identity.label} uses {identity.auth_type} authentication, which has no "
                "connection string with a key; its devices connect with their certificate."
            )
        if identity.module_id:
            return strings.build_module(
                self.device_host, identity.device_id, identity.module_id, key
            )
        return strings.build_device(self.device_host, identity.device_id, key)

    # -- twins ---------------------------------------------------------------------------

    async def get_twin(self, device_id: str, module_id: str | None = None) -> Twin:
        def fetch(rm: IoTHubRegistryManager) -> Twin:
            return Twin(_send_twin(rm, "get_twin", device_id, module_id).json())

        return await self._call(self._ctx("read the twin", device_id, module_id), fetch)

    async def patch_twin(
        self,
        device_id: str,
        module_id: str | None,
        patch: dict[str, Any],
        etag: str | None,
    ) -> Twin:
        """Merge-patch tags and desired properties; ``etag`` guards against lost updates."""
        return await self._write_twin(
            "update_twin", "update the twin", device_id, module_id, patch, etag
        )

    async def replace_twin(
        self,
        device_id: str,
        module_id: str | None,
        twin: dict[str, Any],
        etag: str | None,
    ) -> Twin:
        """Replace tags and desired properties wholesale."""
        return await self._write_twin(
            "replace_twin", "replace the twin", device_id, module_id, twin, etag
        )

    async def _write_twin(
        self,
        operation: str,  # "update_twin" (PATCH) or "replace_twin" (PUT)
        action: str,
        device_id: str,
        module_id: str | None,
        body: dict[str, Any],
        etag: str | None,
    ) -> Twin:
        def send(rm: IoTHubRegistryManager) -> Twin:
            headers = {"If-Match": _quoted(etag)}
            return Twin(_send_twin(rm, operation, device_id, module_id, body, headers).json())

        return await self._call(self._ctx(action, device_id, module_id), send)

    # -- query ---------------------------------------------------------------------------

    async def query(
        self, text: str, *, page_size: int = 100, continuation: str | None = None
    ) -> QueryPage:
        """One page of an IoT Hub query; pass the returned continuation for the next."""

        def run(rm: IoTHubRegistryManager) -> QueryPage:
            response = _post_query(rm, text, continuation, page_size)
            return QueryPage(
                items=response.json(),
                continuation=response.headers.get("x-ms-continuation") or None,
                item_type=response.headers.get("x-ms-item-type") or "twin",
            )

        return await self._call(self._ctx("run the query"), run)

    # -- direct methods ------------------------------------------------------------------

    async def invoke_method(
        self,
        device_id: str,
        module_id: str | None,
        method_name: str,
        payload: Any = None,
        *,
        response_timeout: int = 30,
        connect_timeout: int = 0,
    ) -> MethodResult:
        request = CloudToDeviceMethod(
            method_name=method_name,
            payload=payload,
            response_timeout_in_seconds=response_timeout,
            connect_timeout_in_seconds=connect_timeout,
        )

        def invoke(rm: IoTHubRegistryManager) -> MethodResult:
            # The HTTP call lasts as long as the device may take, plus a margin.
            rm.protocol.config.connection.timeout = response_timeout + connect_timeout + 10
            try:
                if module_id:
                    result = rm.invoke_device_module_method(device_id, module_id, request)
                else:
                    result = rm.invoke_device_method(device_id, request)
            finally:
                rm.protocol.config.connection.timeout = REQUEST_TIMEOUT
            return MethodResult(status=int(result.status), payload=result.payload)

        ctx = self._ctx(f"invoke the method '{method_name}'", device_id, module_id)
        return await self._call(ctx, invoke)

    # -- IoT Hub jobs (/jobs/v2) ---------------------------------------------------------

    async def start_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """Schedule a job; ``request`` is the ``PUT /jobs/v2/{id}`` body as IoT Hub
        documents it (camelCase). Answers the job as the hub reports it."""

        def create(jm: IoTHubJobManager) -> dict[str, Any]:
            job = jm.create_scheduled_job(request["jobId"], JobRequest.deserialize(request))
            return job.serialize(keep_readonly=True)

        ctx = self._ctx(f"start the job '{request.get('jobId', '')}'")
        return await self._call(ctx, create, self._job_manager)

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """The job's status and ``deviceJobStatistics``, as the hub reports them."""

        def fetch(jm: IoTHubJobManager) -> dict[str, Any]:
            return jm.get_scheduled_job(job_id).serialize(keep_readonly=True)

        return await self._call(self._ctx(f"read the job '{job_id}'"), fetch, self._job_manager)

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        def cancel(jm: IoTHubJobManager) -> dict[str, Any]:
            return jm.cancel_scheduled_job(job_id).serialize(keep_readonly=True)

        ctx = self._ctx(f"cancel the job '{job_id}'")
        return await self._call(ctx, cancel, self._job_manager)


# The SDK's generated operations always run the body through its ``Twin`` model (which
# drops keys the model does not know) and deserialize every answer into models: pure
# Python that holds the GIL, ~2 ms per twin call and ~40 ms per 100-twin query page,
# only for us to want the JSON. These helpers send what those operations send, through
# the same msrest client (its auth, retries, TLS trust and proxies), minus the models.

_JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json; charset=utf-8"}
_TWIN_VERBS = {"get_twin": "GET", "update_twin": "PATCH", "replace_twin": "PUT"}


def _send_twin(
    rm: IoTHubRegistryManager,
    operation: str,  # "get_twin", "update_twin" or "replace_twin"
    device_id: str,
    module_id: str | None,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """A device or module twin GET, PATCH or PUT as ``protocol.<group>.<operation>``."""
    group = rm.protocol.modules if module_id else rm.protocol.devices
    path = {"id": device_id, "mid": module_id} if module_id else {"id": device_id}
    return _send(rm, group, operation, _TWIN_VERBS[operation], path, body, headers)


def _send(
    rm: IoTHubRegistryManager,
    group: Any,  # an operations group of the generated client, e.g. rm.protocol.modules
    operation: str,
    verb: str,
    path: dict[str, str],
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    client = rm.protocol._client  # the generated client's msrest ServiceClient
    url = client.format_url(  # path values escaped as the generated operations do
        getattr(group, operation).metadata["url"],
        **{name: group._serialize.url(name, value, "str") for name, value in path.items()},
    )
    request = getattr(client, verb.lower())(
        url, {"api-version": rm.protocol.api_version}, {**_JSON_HEADERS, **(headers or {})}, body
    )
    response = client.send(request, stream=False)
    if response.status_code != 200:
        raise HttpOperationError(group._deserialize, response)
    return response


def _close_session(session: requests.Session) -> None:
    """Close the session's sockets now, so a hub sees the app leave.

    urllib3 2 only forgets its pools when the session closes and leaves their sockets to
    garbage collection, which a response still referenced anywhere can delay forever.
    """
    for adapter in session.adapters.values():
        managers = [getattr(adapter, "poolmanager", None)]
        managers += list(getattr(adapter, "proxy_manager", {}).values())
        for manager in filter(None, managers):
            for key in manager.pools.keys():  # noqa: SIM118 (it refuses plain iteration)
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
    session.close()


def _post_query(
    rm: IoTHubRegistryManager, text: str, continuation: str | None, page_size: int
) -> requests.Response:
    """``POST /devices/query`` as ``protocol.query.get_twins`` sends it."""
    headers = {"x-ms-max-item-count": str(page_size)}
    if continuation is not None:
        headers["x-ms-continuation"] = continuation
    return _send(rm, rm.protocol.query, "get_twins", "POST", {}, {"query": text}, headers)


def _identity(model: Any) -> Identity:
    return Identity.from_json(model.serialize(keep_readonly=True))
