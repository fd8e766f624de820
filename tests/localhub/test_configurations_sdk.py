"""Automatic device management (``/configurations``) driven by the unmodified Python
service SDK (``IoTHubConfigurationManager``) against an in-process hub.

Applying a configuration to existing twins runs on the hub's loop after the call
returns, so tests wait for a twin's state with :func:`until` (a condition with a time
limit).
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.iot.hub import IoTHubConfigurationManager, IoTHubJobManager
from azure.iot.hub.models import (
    Configuration,
    ConfigurationContent,
    ConfigurationMetrics,
    ConfigurationQueriesTestInput,
)
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import trusting_client
from tests.localhub.mqtt_support import (
    MqttHub,
    desired_patches,
    ensure_identity,
    mqtt_hub,
    sdk,
    until,
)

__all__ = ["mqtt_hub"]  # the fixture


def device_config(
    config_id: str, condition: str, desired: dict[str, Any], priority: int = 0, **kw: Any
) -> Configuration:
    content = {f"properties.desired.{key}": value for key, value in desired.items()}
    return Configuration(
        id=config_id,
        content=ConfigurationContent(device_content=content),
        target_condition=condition,
        priority=priority,
        **kw,
    )


def statuses(hub: MqttHub, device_id: str, module_id: str | None = None) -> dict[str, str]:
    return hub.core.configurations.targeting(device_id, module_id)


def desired(hub: MqttHub, device_id: str, module_id: str | None = None) -> dict[str, Any]:
    return hub.core.get_twin(device_id, module_id)["properties"]["desired"]


def tag(hub: MqttHub, device_id: str, **tags: Any) -> None:
    hub.core.patch_twin(device_id, None, {"tags": tags}, None)


async def test_priority_decides_which_configuration_applies(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    for device_id in ("p1", "p2", "q1"):
        ensure_identity(core, device_id)
    tag(mqtt_hub, "p1", env="prod")
    tag(mqtt_hub, "p2", env="prod")
    tag(mqtt_hub, "q1", env="test")
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    async with mqtt_hub.client(core.identity_connection_string("p1")) as device:
        patches = await desired_patches(device)

        low = await sdk(
            manager,
            "create_configuration",
            device_config("low", "tags.env = 'prod'", {"fan": {"speed": 1}}, priority=1),
        )
        assert low.id == "low" and low.etag and low.priority == 1
        assert low.system_metrics.queries["appliedCount"] == (
            "SELECT deviceId FROM devices WHERE configurations.[[low]].status = 'Applied'"
        )
        await until(lambda: statuses(mqtt_hub, "p2") == {"low": "Applied"})
        assert (await patches.get())["fan"] == {"speed": 1}
        assert statuses(mqtt_hub, "q1") == {}

        await sdk(
            manager,
            "create_configuration",
            device_config("high", "tags.env = 'prod'", {"fan": {"speed": 3}}, priority=5),
        )
        await until(lambda: statuses(mqtt_hub, "p1") == {"low": "Targeted", "high": "Applied"})
        assert (await patches.get())["fan"] == {"speed": 3}
    assert desired(mqtt_hub, "p2")["fan"] == {"speed": 3}
    assert "fan" not in desired(mqtt_hub, "q1")

    got = await sdk(manager, "get_configuration", "high")
    assert got.system_metrics.results == {"targetedCount": 2, "appliedCount": 2}
    assert (await sdk(manager, "get_configuration", "low")).system_metrics.results == {
        "targetedCount": 2,
        "appliedCount": 0,
    }


async def test_equal_priority_the_newest_wins_and_twins_follow_their_tags(
    mqtt_hub: MqttHub,
) -> None:
    core = mqtt_hub.core
    ensure_identity(core, "t1")
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    await sdk(manager, "create_configuration", device_config("first", "tags.ring = 1", {"v": 1}))
    await sdk(manager, "create_configuration", device_config("second", "tags.ring = 1", {"v": 2}))
    assert statuses(mqtt_hub, "t1") == {}
    # A twin that starts to match gets the newest of the equal-priority configurations.
    tag(mqtt_hub, "t1", ring=1)
    assert statuses(mqtt_hub, "t1") == {"first": "Targeted", "second": "Applied"}
    assert desired(mqtt_hub, "t1")["v"] == 2
    # One that stops matching keeps its desired values, no longer targeted.
    tag(mqtt_hub, "t1", ring=2)
    assert statuses(mqtt_hub, "t1") == {}
    assert desired(mqtt_hub, "t1")["v"] == 2
    # New devices are evaluated when they are created.
    ensure_identity(core, "t2")
    assert statuses(mqtt_hub, "t2") == {}


async def test_update_delete_metrics_and_errors(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    for device_id in ("u1", "u2"):
        ensure_identity(core, device_id)
        tag(mqtt_hub, device_id, site="a")
    core.patch_reported("u1", None, {"fw": "1.0"})
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    metrics = ConfigurationMetrics(
        queries={"onOld": "SELECT deviceId FROM devices WHERE properties.reported.fw = '1.0'"}
    )
    created = await sdk(
        manager,
        "create_configuration",
        device_config("fw", "tags.site = 'a'", {"fw": "2.0"}, metrics=metrics, labels={"k": "v"}),
    )
    assert created.system_metrics.queries["targetedCount"] == (
        "SELECT deviceId FROM devices WHERE tags.site = 'a'"
    )
    await until(lambda: statuses(mqtt_hub, "u2") == {"fw": "Applied"})
    got = await sdk(manager, "get_configuration", "fw")
    assert got.metrics.results == {"onOld": 1}
    assert got.labels == {"k": "v"}

    async def error_of(method: str, *args: Any) -> tuple[int, str]:
        with pytest.raises(HttpOperationError) as caught:
            await sdk(manager, method, *args)
        response = caught.value.response
        return response.status_code, response.headers.get("iothub-errorcode")

    # Update: target condition and priority may change, with the current etag only.
    narrower = device_config("fw", "deviceId = 'u1'", {"fw": "2.0"}, priority=2)
    updated = await sdk(manager, "update_configuration", narrower, got.etag)
    assert updated.priority == 2 and updated.etag != got.etag
    assert updated.created_time_utc == got.created_time_utc
    await until(lambda: statuses(mqtt_hub, "u2") == {})
    assert statuses(mqtt_hub, "u1") == {"fw": "Applied"}
    assert await error_of("update_configuration", narrower, got.etag) == (
        412,
        "PreconditionFailed",
    )
    changed = device_config("fw", "deviceId = 'u1'", {"fw": "3.0"})
    assert await error_of("update_configuration", changed, "*") == (400, "ArgumentInvalid")
    assert await error_of("create_configuration", narrower) == (409, "ConfigurationAlreadyExists")
    bad = device_config("bad", "tags.site = = 'a'", {"x": 1})
    assert await error_of("create_configuration", bad) == (400, "ArgumentInvalid")
    not_desired = Configuration(
        id="nd", content=ConfigurationContent(device_content={"tags.x": 1}), target_condition="*"
    )
    assert await error_of("create_configuration", not_desired) == (400, "ArgumentInvalid")
    bad_name = device_config("badname", "*", {"$reserved": 1})
    assert await error_of("create_configuration", bad_name) == (400, "ArgumentInvalid")
    assert await error_of("get_configuration", "nope") == (404, "ConfigurationNotFound")

    listed = await sdk(manager, "get_configurations", 10)
    assert [c.id for c in listed] == ["fw"]
    test = await sdk(
        manager,
        "test_configuration_queries",
        ConfigurationQueriesTestInput(
            target_condition="tags.x = ", custom_metric_queries={"ok": "SELECT * FROM devices"}
        ),
    )
    assert test.target_condition_error and test.custom_metric_query_errors == {}

    assert await error_of("delete_configuration", "fw", "bm90IGl0") == (412, "PreconditionFailed")
    await sdk(manager, "delete_configuration", "fw")
    await until(lambda: statuses(mqtt_hub, "u1") == {})
    assert desired(mqtt_hub, "u1")["fw"] == "2.0"
    assert await error_of("delete_configuration", "fw") == (404, "ConfigurationNotFound")


async def test_module_configuration_targets_module_twins(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    ensure_identity(core, "md", "sensor")
    ensure_identity(core, "md", "other")
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    config = Configuration(
        id="modcfg",
        content=ConfigurationContent(module_content={"properties.desired.rate": 5}),
        target_condition="FROM devices.modules WHERE moduleId = 'sensor'",
    )
    made = await sdk(manager, "create_configuration", config)
    assert made.system_metrics.results["targetedCount"] == 1
    await until(lambda: statuses(mqtt_hub, "md", "sensor") == {"modcfg": "Applied"})
    assert desired(mqtt_hub, "md", "sensor")["rate"] == 5
    assert statuses(mqtt_hub, "md", "other") == {}
    assert statuses(mqtt_hub, "md") == {}


async def test_apply_configuration_content_on_an_edge_device(mqtt_hub: MqttHub) -> None:
    core = mqtt_hub.core
    core.put_device("edge1", {"capabilities": {"iotEdge": True}}, None)
    ensure_identity(core, "leaf")
    manager = mqtt_hub.service(IoTHubConfigurationManager)
    content = ConfigurationContent(
        modules_content={
            "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {}}},
            "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}},
            "sim": {"properties.desired": {"interval": 10}},
        }
    )
    assert await sdk(manager, "apply_configuration_on_edge_device", "edge1", content) is None
    assert desired(mqtt_hub, "edge1", "$edgeAgent")["schemaVersion"] == "1.1"
    assert desired(mqtt_hub, "edge1", "$edgeHub")["routes"] == {}
    assert desired(mqtt_hub, "edge1", "sim") == {
        "interval": 10,
        "$metadata": desired(mqtt_hub, "edge1", "sim")["$metadata"],
        "$version": 2,
    }
    # Applying again replaces the modules' desired properties.
    again = ConfigurationContent(modules_content={"sim": {"properties.desired": {"x": 1}}})
    await sdk(manager, "apply_configuration_on_edge_device", "edge1", again)
    assert "interval" not in desired(mqtt_hub, "edge1", "sim")
    with pytest.raises(HttpOperationError) as caught:
        await sdk(manager, "apply_configuration_on_edge_device", "leaf", content)
    assert caught.value.response.status_code == 400
    with pytest.raises(HttpOperationError) as caught:
        await sdk(manager, "apply_configuration_on_edge_device", "ghost", content)
    assert caught.value.response.status_code == 404


async def test_policies_without_the_right_are_refused(mqtt_hub: MqttHub) -> None:
    """Configurations are registry writes, jobs service operations (B.9)."""
    server = mqtt_hub.server

    def manager(cls, policy: str):
        return trusting_client(
            cls, server.service_connection_string(policy), server.certificates.ca_cert
        )

    config = device_config("denied", "*", {"x": 1})
    for cls, method, args in (
        (IoTHubConfigurationManager, "create_configuration", (config,)),
        (IoTHubJobManager, "get_scheduled_job", ("any",)),
    ):
        policy = "registryRead" if cls is IoTHubConfigurationManager else "registryReadWrite"
        with pytest.raises(HttpOperationError) as caught:
            await sdk(manager(cls, policy), method, *args)
        assert caught.value.response.status_code == 401
    reader = manager(IoTHubConfigurationManager, "registryRead")
    assert await sdk(reader, "get_configurations") == []
