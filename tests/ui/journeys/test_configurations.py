"""Automatic device management: someone sets up a configuration for a device on the hub;
a person opening that device's twin sees the content arrive and which configuration put
it there."""

from __future__ import annotations

import asyncio
import time

from azure.iot.hub import IoTHubConfigurationManager
from azure.iot.hub.models import Configuration, ConfigurationContent

from tests.hubfixtures import trusting_client


def test_the_twin_names_the_configuration_that_targets_it(person, qrun):
    window = person.window

    async def journey():
        info = window.session.local_info
        configs = trusting_client(
            IoTHubConfigurationManager, info.service_connection_string, info.ca_cert
        )
        config = Configuration(
            id="night-mode",
            content=ConfigurationContent(device_content={"properties.desired.night": True}),
            target_condition="deviceId = 'myFirstDevice'",
            priority=10,
        )
        await asyncio.to_thread(configs.create_configuration, config)
        # The hub applies it right after creating it; its metrics say when it has.
        deadline = time.monotonic() + 15
        while True:
            got = await asyncio.to_thread(configs.get_configuration, "night-mode")
            if got.system_metrics.results["appliedCount"] == 1:
                break
            assert time.monotonic() < deadline, "the configuration was not applied"
            await asyncio.sleep(0.05)

        person.click_row(window.tree_view, "myFirstDevice")
        await person.wait_to_see("configurations: night-mode (Applied)")
        assert person.sees('"night": true')  # its content, in the desired properties

    qrun(journey())
