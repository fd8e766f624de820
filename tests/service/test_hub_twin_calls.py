"""``HubService`` builds its twin URLs itself (raw JSON through the SDK's client): ids with
characters that URLs reserve must reach the hub escaped, as the SDK's operations do it."""

from __future__ import annotations

import pytest

from tests.service.localhub import service_for
from twin_explorer.localhub.runtime.server import HubServer

# Characters IoT Hub allows in ids that a URL path would misread unescaped.
ODD_IDS = ["a#b%c?d", "x:y=z@$'!(),*", "dots.and-dashes_"]


@pytest.mark.parametrize("device_id", ODD_IDS)
async def test_twin_calls_with_url_characters_in_ids(hub_server: HubServer, device_id) -> None:
    module_id = "m#1%?"
    service = service_for(hub_server)
    try:
        await service.create_device(device_id)
        await service.create_module(device_id, module_id)
        patched = await service.patch_twin(
            device_id, module_id, {"properties": {"desired": {"k": 1}}}, None
        )
        read = await service.get_twin(device_id, module_id)
        replaced = await service.replace_twin(device_id, None, {"tags": {"t": device_id}}, None)
    finally:
        await service.aclose()
    assert (read.device_id, read.module_id) == (device_id, module_id)
    assert read.desired["k"] == patched.desired["k"] == 1
    assert replaced.tags == {"t": device_id}
