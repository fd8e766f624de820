"""IoT Edge automatic deployments (configurations with ``modulesContent``) applied by
target condition and priority, driven by the unmodified Python service SDK
(``IoTHubConfigurationManager``) against an in-process hub; a module client of the SDK
receives the ``$edgeAgent`` desired patch.

Deployments apply on the hub's loop after the call returns, so tests wait for a twin's
state with :func:`until`.
"""

from __future__ import annotations

from typing import Any

from azure.iot.hub import IoTHubConfigurationManager
from azure.iot.hub.models import Configuration, ConfigurationContent

from tests.localhub.mqtt_support import (
    MqttHub,
    desired_patches,
    ensure_identity,
    mqtt_hub,
    sdk,
    until,
)
from twin_explorer.localhub.errors import HubError

__all__ = ["mqtt_hub"]  # the fixture

AGENT = "$edgeAgent"


def base_content(modules: dict[str, str], routes: dict[str, str]) -> dict[str, Any]:
    """A base (standard) deployment: whole desired properties of the runtime modules."""
    images = {name: {"settings": {"image": image}} for name, image in modules.items()}
    return {
        AGENT: {
            "properties.desired": {
                "schemaVersion": "1.1",
                "runtime": {"type": "docker", "settings": {}},
                "systemModules": {},
                "modules": images,
            }
        },
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": routes}},
        **{name: {"properties.desired": {"from": "base"}} for name in modules},
    }


def deployment(
    config_id: str, condition: str, content: dict[str, Any], priority: int = 0
) -> Configuration:
    return Configuration(
        id=config_id,
        content=ConfigurationContent(modules_content=content),
        target_condition=condition,
        priority=priority,
    )


def edge_device(hub: MqttHub, device_id: str, **tags: Any) -> None:
    ensure_identity(hub.core, device_id)
    hub.core.put_device(
        device_id, {**hub.core.get_device(device_id), "capabilities": {"iotEdge": True}}, "*"
    )
    tag(hub, device_id, **tags)


def tag(hub: MqttHub, device_id: str, **tags: Any) -> None:
    hub.core.patch_twin(device_id, None, {"tags": tags}, None)


def statuses(hub: MqttHub, device_id: str) -> dict[str, str]:
    """The deployments on an edge device, as its ``$edgeAgent`` twin's configurations."""
    try:
        return hub.core.configurations.targeting(device_id, AGENT)
    except HubError:  # no $edgeAgent module yet: nothing targets the device
        return {}


def desired(hub: MqttHub, device_id: str, module_id: str) -> dict[str, Any]:
    found = hub.core.get_twin(device_id, module_id)["properties"]["desired"]
    return {k: v for k, v in found.items() if not k.startswith("$")}


async def test_base_deployments_apply_to_matching_edge_devices_by_priority(
    mqtt_hub: MqttHub,
) -> None:
    core = mqtt_hub.core
    edge_device(mqtt_hub, "e1", site="a")
    edge_device(mqtt_hub, "e2", site="b")  # an edge device the condition leaves out
    ensure_identity(core, "leaf")  # not an edge device: never targeted
    tag(mqtt_hub, "leaf", site="a")
    manager = mqtt_hub.service(IoTHubConfigurationManager)

    low = base_content({"sensor": "img:1"}, {"up": "FROM /messages/* INTO $upstream"})
    created = await sdk(manager, "create_configuration", deployment("low", "tags.site = 'a'", low))
    assert created.system_metrics.queries["appliedCount"] == (
        "SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent'"
        " AND configurations.[[low]].status = 'Applied'"
    )
    await until(lambda: statuses(mqtt_hub, "e1") == {"low": "Applied"})
    agent = desired(mqtt_hub, "e1", AGENT)
    assert agent["modules"] == {"sensor": {"settings": {"image": "img:1"}}}
    assert desired(mqtt_hub, "e1", "$edgeHub")["routes"] == {
        "up": "FROM /messages/* INTO $upstream"
    }
    # A module named in the deployment gets a module identity and its desired content.
    assert core.get_module("e1", "sensor")["moduleId"] == "sensor"
    assert desired(mqtt_hub, "e1", "sensor") == {"from": "base"}
    assert statuses(mqtt_hub, "e2") == {}
    assert core.get_twin("leaf").get("configurations") is None
    assert [m["moduleId"] for m in core.list_modules("leaf")] == []

    async with mqtt_hub.client(core.identity_connection_string("e1", AGENT)) as agent_client:
        patches = await desired_patches(agent_client)
        high = base_content({"camera": "img:2"}, {})
        await sdk(manager, "create_configuration", deployment("high", "tags.site = 'a'", high, 5))
        await until(lambda: statuses(mqtt_hub, "e1") == {"low": "Targeted", "high": "Applied"})
        # The base deployment replaces $edgeAgent's desired properties: only the winner's modules.
        assert (await patches.get())["modules"] == {"camera": {"settings": {"image": "img:2"}}}
    assert desired(mqtt_hub, "e1", "$edgeHub")["routes"] == {}

    got = await sdk(manager, "get_configuration", "high")
    assert got.system_metrics.results == {
        "targetedCount": 1,
        "appliedCount": 1,
        "reportedSuccessfulCount": 0,
        "reportedFailedCount": 0,
    }
    assert (await sdk(manager, "get_configuration", "low")).system_metrics.results[
        "appliedCount"
    ] == 0
    # The edge agent reporting the desired version it applied counts as success.
    version = core.get_twin("e1", AGENT)["properties"]["desired"]["$version"]
    core.patch_reported(
        "e1", AGENT, {"lastDesiredVersion": version, "lastDesiredStatus": {"code": 200}}
    )
    got = await sdk(manager, "get_configuration", "high")
    assert got.system_metrics.results["reportedSuccessfulCount"] == 1


async def test_layered_deployments_merge_above_the_base(mqtt_hub: MqttHub) -> None:
    edge_device(mqtt_hub, "l1", ring="x")
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    layer = {
        AGENT: {"properties.desired.modules.extra": {"settings": {"image": "img:x"}}},
        "$edgeHub": {"properties.desired.routes.extraRoute": "FROM /messages/* INTO $upstream"},
        "sensor": {"properties.desired.layeredProperties": {"stopAfter": 10}},
    }
    # A layer without a base deployment under it is targeted but not applied.
    await sdk(manager, "create_configuration", deployment("layer", "tags.ring = 'x'", layer, 9))
    await until(lambda: statuses(mqtt_hub, "l1") == {"layer": "Targeted"})
    assert "extra" not in desired(mqtt_hub, "l1", AGENT).get("modules", {})

    base = base_content({"sensor": "img:1"}, {"up": "FROM /* INTO $upstream"})
    await sdk(manager, "create_configuration", deployment("base", "tags.ring = 'x'", base, 1))
    await until(lambda: statuses(mqtt_hub, "l1") == {"base": "Applied", "layer": "Applied"})
    assert desired(mqtt_hub, "l1", AGENT)["modules"] == {
        "sensor": {"settings": {"image": "img:1"}},
        "extra": {"settings": {"image": "img:x"}},
    }
    assert desired(mqtt_hub, "l1", "$edgeHub")["routes"] == {
        "up": "FROM /* INTO $upstream",
        "extraRoute": "FROM /messages/* INTO $upstream",
    }
    assert desired(mqtt_hub, "l1", "sensor") == {
        "from": "base",
        "layeredProperties": {"stopAfter": 10},
    }
    # A layer whose priority is not above the base's is not applied.
    low_layer = {AGENT: {"properties.desired.modules.low": {"settings": {"image": "img:l"}}}}
    await sdk(
        manager, "create_configuration", deployment("lowlayer", "tags.ring = 'x'", low_layer, 1)
    )
    await until(lambda: statuses(mqtt_hub, "l1").get("lowlayer") == "Targeted")
    assert "low" not in desired(mqtt_hub, "l1", AGENT)["modules"]


async def test_retargeting_and_deleting_move_deployments(mqtt_hub: MqttHub) -> None:
    edge_device(mqtt_hub, "r1", group="g1")
    edge_device(mqtt_hub, "r2", group="g2")
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    content = base_content({"sensor": "img:1"}, {})
    created = await sdk(
        manager, "create_configuration", deployment("dep", "tags.group = 'g1'", content)
    )
    await until(lambda: statuses(mqtt_hub, "r1") == {"dep": "Applied"})
    assert statuses(mqtt_hub, "r2") == {}

    # Changing the target condition moves the deployment to the devices it now matches.
    moved = deployment("dep", "tags.group = 'g2'", content)
    await sdk(manager, "update_configuration", moved, created.etag)
    await until(lambda: statuses(mqtt_hub, "r2") == {"dep": "Applied"})
    assert "sensor" in desired(mqtt_hub, "r2", AGENT)["modules"]
    await until(lambda: statuses(mqtt_hub, "r1") == {})
    # A device that leaves keeps its modules (IoT Hub does not remove them).
    assert "sensor" in desired(mqtt_hub, "r1", AGENT)["modules"]

    # Changing a device's tags moves it in or out at once.
    tag(mqtt_hub, "r1", group="g2")
    assert statuses(mqtt_hub, "r1") == {"dep": "Applied"}
    tag(mqtt_hub, "r2", group="none")
    assert statuses(mqtt_hub, "r2") == {}
    # So does turning the device into a non-edge device.
    core = mqtt_hub.core
    core.put_device("r1", {**core.get_device("r1"), "capabilities": {"iotEdge": False}}, "*")
    assert statuses(mqtt_hub, "r1") == {}
    core.put_device("r1", {**core.get_device("r1"), "capabilities": {"iotEdge": True}}, "*")
    assert statuses(mqtt_hub, "r1") == {"dep": "Applied"}

    await sdk(manager, "delete_configuration", "dep")
    await until(lambda: statuses(mqtt_hub, "r1") == {})
    assert "sensor" in desired(mqtt_hub, "r1", AGENT)["modules"]
