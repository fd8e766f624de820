"""The device SDK at arm's length: creating clients, its threads, its calls (reference A.15).

* Handlers run on SDK threads. ``Hop.post`` moves a call onto the module's loop before
  anything is touched, and is silent once that loop is closed.
* Handler property setters block until SUBSCRIBE completes (an implicit CONNECT
  included) and can block for good if SUBACK never comes. ``in_thread`` runs them on a
  daemon thread of their own, so neither the loop nor the process exit waits on them.
* Twin requests and publishes have no timeout in the SDK (A.6, A.12). ``call`` gives up
  waiting after ``limit`` seconds but shields the SDK's future, which the SDK resolves later
  from its own thread; cancelling it would make that resolution fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twin_explorer.connection import strings
from twin_explorer.simulator.errors import TimedOut, translate
from twin_explorer.simulator.x509_files import X509Identity, sdk_files

T = TypeVar("T")


class Hop:
    """Calls from SDK threads onto one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        # A closed loop means the app is gone: there is nobody left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)


async def in_thread(fn: Callable[..., T], *args: Any, name: str = "simulator-sdk") -> T:
    """Run a blocking call on a new daemon thread and await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    hop = Hop(loop)

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # delivered to the awaiting coroutine
            hop.post(settle, False, exc)
        else:
            hop.post(settle, True, result)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await future


async def call(operation: Awaitable[T], limit: float, what: str) -> T:
    """Await an SDK coroutine with a timeout; SDK errors come out translated."""
    task = asyncio.ensure_future(operation)
    try:
        async with asyncio.timeout(limit):
            return await asyncio.shield(task)
    except TimeoutError:
        # Leave the SDK's task to finish on its own; only retrieve its outcome.
        task.add_done_callback(_forget)
        raise TimedOut(f"The hub did not answer {what} within {limit:g} s.") from None
    except asyncio.CancelledError:
        task.add_done_callback(_forget)
        raise
    except Exception as exc:
        raise translate(exc) from exc


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def create_client(
    connection_string: str, *, module: bool, x509: X509Identity | None = None, **kwargs: Any
) -> Any:
    """An ``azure.iot.device.aio`` module (or device) client; no network yet (A.3).

    With ``x509`` the client authenticates with that certificate (A.14); the connection
    string then only names the hub and the identity (``x509=true``).
    """
    from azure.iot.device import X509
    from azure.iot.device.aio import IoTHubDeviceClient, IoTHubModuleClient

    cls = IoTHubModuleClient if module else IoTHubDeviceClient
    if x509 is None:
        return cls.create_from_connection_string(connection_string, **kwargs)
    cs = strings.parse(connection_string)
    ids = {"device_id": cs.device_id, **({"module_id": cs.module_id} if module else {})}
    if cs.gateway_host_name:
        kwargs["gateway_hostname"] = cs.gateway_host_name
    # The SDK loads the files into its TLS context while creating the client.
    with sdk_files(x509) as files:
        return cls.create_from_x509_certificate(
            x509=X509(*files), hostname=cs.host_name, **ids, **kwargs
        )


def method_response(request: Any, status: int, payload: Any) -> Any:
    from azure.iot.device import MethodResponse

    return MethodResponse.create_from_method_request(request, status, payload)


# What every telemetry message from a simulated module says it carries.
CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"


def message(body: str, properties: dict[str, str]) -> Any:
    from azure.iot.device import Message

    msg = Message(body, content_encoding=CONTENT_ENCODING, content_type=CONTENT_TYPE)
    msg.custom_properties.update(properties)
    return msg
