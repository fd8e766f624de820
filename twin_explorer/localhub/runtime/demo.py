"""Demo identities for a first start, and a bulk seeder for benchmarks.

``seed_demo`` runs once per hub: meta remembers it, so identities the user deleted stay
deleted after a restart.
"""

from __future__ import annotations

import json
from typing import Any

from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.core.identity import new_device, new_module
from twin_explorer.localhub.core.twinview import module_root, twin_root
from twin_explorer.twin.document import TwinDocument

SEEDED_KEY = "demo_seeded"

_SEATTLE = {"site": "seattle", "building": "B43"}
_REDMOND = {"site": "redmond", "building": "B2"}

# device id -> (device body extras, tags, device desired, device reported, modules)
# modules: module id -> (managedBy, desired, reported)
_DEMO: dict[str, tuple[dict, dict, dict, dict, dict[str, tuple[str | None, dict, dict]]]] = {
    # The IoT Hub module-twin tutorial's names, so its steps work unchanged.
    "myFirstDevice": ({}, {}, {}, {}, {"myFirstModule": (None, {}, {})}),
    "thermostat-lobby": (
        {},
        {**_SEATTLE, "floor": 1, "type": "thermostat"},
        {"telemetryInterval": 30},
        {"firmware": "1.4.2", "status": "running"},
        {
            "climate": (
                None,
                {"telemetryInterval": 30, "thresholds": {"high": 26.5, "low": 18.0}},
                {"firmware": "1.4.2", "status": "running", "temperature": 21.7, "humidity": 41},
            ),
        },
    ),
    "thermostat-floor3": (
        {},
        {**_SEATTLE, "floor": 3, "type": "thermostat"},
        {"telemetryInterval": 60},
        {"firmware": "1.3.9", "status": "updating"},
        {
            "climate": (
                None,
                {"telemetryInterval": 60, "thresholds": {"high": 25.0, "low": 19.0}},
                {"firmware": "1.3.9", "status": "updating", "temperature": 23.4, "humidity": 38},
            ),
        },
    ),
    "chiller-01": (
        {},
        {**_SEATTLE, "floor": 0, "type": "chiller"},
        {},
        {"serial": "CH-2291-A"},
        {
            "controller": (
                None,
                {"setpoint": 6.5, "mode": "auto", "telemetryInterval": 10},
                {"firmware": "2.0.1", "status": "running", "supplyTemperature": 6.8},
            ),
            "vibration": (
                None,
                {"sampleRateHz": 400, "thresholds": {"rmsWarning": 4.5, "rmsAlarm": 7.1}},
                {"firmware": "0.9.0", "status": "scanning", "rms": 2.3},
            ),
        },
    ),
    "door-sensor-17": (
        {},
        {**_REDMOND, "floor": 2, "type": "door"},
        {"reportOnChangeOnly": True},
        {"doorOpen": False, "battery": 87, "firmware": "3.1.0"},
        {},
    ),
    "air-quality-02": (
        {},
        {**_REDMOND, "floor": 1, "type": "airQuality"},
        {},
        {},
        {
            "sensor": (
                None,
                {"telemetryInterval": 15, "thresholds": {"co2": 1000, "pm25": 35}},
                {"firmware": "1.0.7", "status": "running", "co2": 612, "pm25": 8.2},
            ),
        },
    ),
    "legacy-meter-09": (
        {"status": "disabled", "statusReason": "Replaced by a newer meter"},
        {**_REDMOND, "floor": 0, "type": "meter"},
        {},
        {"firmware": "0.4.1", "status": "retired"},
        {},
    ),
    "edge-gateway-01": (
        {"capabilities": {"iotEdge": True}},
        {**_SEATTLE, "floor": 0, "type": "gateway"},
        {},
        {},
        {
            # IoT Edge's system modules exist on every Edge device.
            "$edgeAgent": (None, {}, {"status": "running", "version": "1.4"}),
            "$edgeHub": (None, {}, {"status": "running", "version": "1.4"}),
            "filtermodule": (
                "IotEdge",
                {"temperatureThreshold": 25},
                {"status": "running", "messagesFiltered": 1289},
            ),
        },
    ),
}


def _twin(
    core: HubCore,
    device_id: str,
    module_id: str | None,
    desired: dict,
    reported: dict,
    tags: dict | None = None,
) -> None:
    body: dict[str, Any] = {}
    if tags:
        body["tags"] = tags
    if desired:
        body["properties"] = {"desired": desired}
    if body:
        core.patch_twin(device_id, module_id, body, None)
    if reported:
        core.patch_reported(device_id, module_id, reported)


def seed_demo(core: HubCore) -> bool:
    """Create the demo identities on a hub's first start; False if done before."""
    if core.store.get_meta(SEEDED_KEY):
        return False
    with core.store.transaction():
        for device_id, (extras, tags, desired, reported, modules) in _DEMO.items():
            body = {"deviceId": device_id, "authentication": {"type": "sas"}, **extras}
            core.put_device(device_id, body, None)
            _twin(core, device_id, None, desired, reported, tags)
            for module_id, (managed_by, m_desired, m_reported) in modules.items():
                core.put_module(device_id, module_id, {"managedBy": managed_by}, None)
                _twin(core, device_id, module_id, m_desired, m_reported)
        core.store.set_meta(SEEDED_KEY, core.ctx.now())
    return True


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _FreshTwins:
    """Twin rows for new identities: every fresh twin is the same document except for
    its tags and identity root fields."""

    def __init__(self, now: str) -> None:
        self.tail = TwinDocument.new(now).service_view()  # etag, version, tags, properties

    def row(
        self, device_id: str, module_id: str, root: dict[str, Any], tags: dict[str, Any]
    ) -> tuple[str, str, int, str, str, str]:
        view = {**root, **self.tail, "tags": tags}
        return (
            device_id,
            module_id,
            int(bool(module_id)),
            root["status"],
            root["connectionState"],
            _dumps(view),
        )


def seed_bulk(
    core: HubCore, devices: int, modules_per_device: int, *, prefix: str = "device"
) -> None:
    """Insert many identities fast (benchmarks): one transaction, executemany.

    Devices are ``{prefix}-000000``...; device tags spread them over 10 sites and 20
    floors so filtered queries have something to find. Modules are ``module-0``...
    """
    fresh = _FreshTwins(core.ctx.now())
    width = max(6, len(str(devices - 1)))
    body = {"authentication": {"type": "sas"}}  # keys generated per identity
    device_rows, module_rows, twin_rows = [], [], []
    with core.store.transaction(durable=False):
        tags_iter = iter(core.ctx.identity_tags(devices * (1 + modules_per_device)))
        for i in range(devices):
            device_id = f"{prefix}-{i:0{width}d}"
            etag, generation = next(tags_iter)
            device = new_device(device_id, body, etag=etag, generation=generation)
            device_rows.append((device_id, "enabled", "Disconnected", _dumps(device)))
            tags = {"site": f"site-{i % 10}", "floor": i % 20}
            twin_rows.append(fresh.row(device_id, "", twin_root(device), tags))
            for j in range(modules_per_device):
                module_id = f"module-{j}"
                etag, generation = next(tags_iter)
                module = new_module(device_id, module_id, body, etag=etag, generation=generation)
                module_rows.append((device_id, module_id, "Disconnected", _dumps(module)))
                twin_rows.append(fresh.row(device_id, module_id, module_root(module, device), {}))
        core.store.bulk_insert(device_rows, module_rows, twin_rows)
