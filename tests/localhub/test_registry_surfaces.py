"""The registry surfaces the Python service SDK (azure-iot-hub) calls beyond single
identities: listing devices with ``top``, bulk registry operations and device scopes.

The hub runs on the test's event loop, so every blocking SDK call goes through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.hubfixtures import server_registry_manager


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


@pytest.fixture
def rm(hub_server):
    return server_registry_manager(hub_server)


async def test_get_devices_with_and_without_top(rm, hub_server) -> None:
    for device_id in ("d3", "d1", "d2"):
        hub_server.core.put_device(device_id, {}, None)
    devices = await call(rm.get_devices)
    assert [device.device_id for device in devices] == ["d1", "d2", "d3"]
    assert all(device.etag and device.authentication.type == "sas" for device in devices)
    assert [device.device_id for device in await call(rm.get_devices, 2)] == ["d1", "d2"]
    # Out of 1..1000 is taken as 1000 (REST API "Devices - Get Devices"), not refused.
    for outside in (0, 5000):
        assert len(await call(rm.get_devices, outside)) == 3
