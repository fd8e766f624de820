"""A hub whose REST port is 443 prints its service connection string as IoT Hub's are,
``HostName=<host>`` without a port, so the Node.js service SDK (which dials 443 and takes
no port in HostName) uses it as printed.

Port 443 is taken in a private network namespace (``tests/node/netns.py``), so the test
needs no free 443 on the machine and binds nothing outside.
"""

from __future__ import annotations

from typing import Any

from tests.node.harness import NodeService
from tests.node.netns import run_in_private_network
from twin_explorer.localhub.runtime.server import HubServer


def test_the_node_service_sdk_uses_the_string_a_hub_on_443_prints(hub_data_dir) -> None:
    data_dir = hub_data_dir()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with HubServer(data_dir, rest_port=443, mqtt_port=0, proxy_port=None) as hub:
            hub.core.put_device("on443", {}, None)
            info = hub.ready_info()
            connection_string = info["service_connection_string"]
            async with await NodeService.start(
                connection_string, hub.certificates.ca_cert, None
            ) as service:
                return info, await service.registry("get", "on443")

    info, answer = run_in_private_network(scenario)
    assert info["rest_port"] == 443
    host_part = info["service_connection_string"].split(";")[0]  # no key in a failure
    assert host_part == "HostName=localhost"
    assert answer["event"] == "result", answer
    assert answer["body"]["deviceId"] == "on443"
