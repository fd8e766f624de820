"""Ready-to-paste code for scripts and SDK samples pointed at the local hub.

The code reads the connection strings from environment variables, so only the
environment snippet carries the secret; it is masked unless the caller asks for it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from twin_explorer.connection import strings
from twin_explorer.connection.strings import MASK
from twin_explorer.service.local_hub import LocalHubInfo

__all__ = ["MASK", "Snippets", "masked", "needs_proxy", "snippets"]

DEVICE_PORT = 8883  # the device SDKs always dial this port


@dataclass(frozen=True)
class Snippets:
    environment: str
    python_service: str
    python_device: str
    nodejs: str

    def items(self) -> list[tuple[str, str]]:
        return [
            ("Environment", self.environment),
            ("Python service", self.python_service),
            ("Python device", self.python_device),
            ("Node.js", self.nodejs),
        ]


def needs_proxy(info: LocalHubInfo) -> bool:
    return info.mqtt_port != DEVICE_PORT and info.proxy_port is not None


def masked(connection_string: str) -> str:
    """The connection string with its key hidden, as everywhere else in the app: shows
    which hub and policy it is."""
    return strings.parse(connection_string).masked()


def snippets(info: LocalHubInfo, *, reveal: bool = False) -> Snippets:
    secret = info.service_connection_string if reveal else masked(info.service_connection_string)
    ca = shlex.quote(info.ca_cert)
    env = [
        "# The local hub, for scripts and SDK samples run from this shell",
        f"export IOTHUB_CONNECTION_STRING={shlex.quote(secret)}",
        f"export IOTHUB_CA_CERT={ca}",
        f"export NODE_EXTRA_CA_CERTS={ca}  # Node.js trusts the hub's CA",
        "export NO_PROXY=localhost,127.0.0.1  # a company proxy must not take local calls",
    ]
    if info.mqtt_port is not None:
        env.append(f"export IOTHUB_MQTT_PORT={info.mqtt_port}  # Node.js devices dial it")
    if needs_proxy(info):
        env.append(f"export IOTHUB_PROXY_PORT={info.proxy_port}  # Python devices go through it")
    env.append(
        "# A module's own string: select it, then Module → Copy Primary Connection String…\n"
        "# export IOTHUB_MODULE_CONNECTION_STRING='HostName=…;DeviceId=…;ModuleId=…;"
        "SharedAccessKey=…'"
    )
    python_service = "\n".join(
        [
            "# pip install azure-iot-hub",
            "import os",
            "",
            "from azure.iot.hub import IoTHubRegistryManager",
            "",
            "registry = IoTHubRegistryManager.from_connection_string(",
            '    os.environ["IOTHUB_CONNECTION_STRING"]',
            ")",
            "# Trust the local hub's CA (or set REQUESTS_CA_BUNDLE)",
            'registry.protocol.config.connection.verify = os.environ["IOTHUB_CA_CERT"]',
            "for device in registry.get_devices():",
            "    print(device.device_id, registry.get_twin(device.device_id).properties.desired)",
        ]
    )
    if needs_proxy(info):
        proxy_import = "from azure.iot.device import IoTHubModuleClient, ProxyOptions"
        proxy_lines = [
            f"    # MQTT listens on {info.mqtt_port}, not 8883: go through the hub's proxy",
            '    proxy_options=ProxyOptions("HTTP", "127.0.0.1", '
            'int(os.environ["IOTHUB_PROXY_PORT"])),',
        ]
    else:
        proxy_import = "from azure.iot.device import IoTHubModuleClient"
        proxy_lines = []
    python_device = "\n".join(
        [
            "# pip install azure-iot-device",
            "import os",
            "",
            proxy_import,
            "",
            "client = IoTHubModuleClient.create_from_connection_string(",
            '    os.environ["IOTHUB_MODULE_CONNECTION_STRING"],',
            '    server_verification_cert=open(os.environ["IOTHUB_CA_CERT"]).read(),',
            *proxy_lines,
            ")",
            "client.connect()",
            'print(client.get_twin()["desired"])',
            'client.patch_twin_reported_properties({"hello": "from a script"})',
            "client.shutdown()",
        ]
    )
    nodejs = "\n".join(
        [
            "// npm install azure-iot-device azure-iot-device-mqtt",
            "// Run in a shell with the Environment snippet's variables:",
            "// NODE_EXTRA_CA_CERTS makes Node.js trust the hub's CA.",
            "const { ModuleClient } = require('azure-iot-device');",
            "const { Mqtt } = require('azure-iot-device-mqtt');",
            "",
            "// The SDK dials mqtts://<GatewayHostName>, port included, so this reaches the",
            "// hub's MQTT port while the SAS token still names HostName.",
            "const connectionString = process.env.IOTHUB_MODULE_CONNECTION_STRING +",
            f"  ';GatewayHostName={info.hostname}:' + process.env.IOTHUB_MQTT_PORT;",
            "const client = ModuleClient.fromConnectionString(connectionString, Mqtt);",
            "",
            "async function main() {",
            "  await client.open();",
            "  const twin = await client.getTwin();",
            "  console.log(twin.properties.desired);",
            "  await new Promise((resolve, reject) => twin.properties.reported.update(",
            "    { hello: 'from Node.js' }, (err) => (err ? reject(err) : resolve())));",
            "  await client.close();",
            "}",
            "main().catch((err) => { console.error(err.message); process.exit(1); });",
        ]
    )
    return Snippets("\n".join(env), python_service, python_device, nodejs)
