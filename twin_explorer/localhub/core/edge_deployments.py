"""IoT Edge automatic deployments: which ones apply to an edge device, and what the
module twins' desired properties become.

A deployment is a configuration with ``content.modulesContent``. It targets IoT Edge
devices (``capabilities.iotEdge``) whose device twin matches its target condition.

* A *base* (standard) deployment sets ``$edgeAgent``'s whole ``properties.desired``. An
  edge device applies one and only one: the highest priority, then the newest.
* A *layered* deployment sets only paths below ``properties.desired`` (for instance
  ``properties.desired.modules.sensor`` of ``$edgeAgent`` or
  ``properties.desired.routes.r`` of ``$edgeHub``). It applies on top of the base one when
  its priority is higher than the base's; layers merge in priority order, so of two layers
  setting the same module or route the higher priority wins. A layer that sets a module's
  whole ``properties.desired`` replaces what lower deployments gave that module.

Deployment status is kept on the ``$edgeAgent`` module twin's ``configurations`` field,
which is what IoT Hub's edge system metric queries read.
"""

from __future__ import annotations

import copy
from typing import Any

EDGE_AGENT = "$edgeAgent"
DESIRED = "properties.desired"


def is_base(modules_content: dict[str, Any]) -> bool:
    """A base deployment gives ``$edgeAgent`` its whole desired properties."""
    agent = modules_content.get(EDGE_AGENT)
    return isinstance(agent, dict) and DESIRED in agent


def _merge(into: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def compose(
    base: dict[str, dict[str, Any]], layers: list[dict[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Module id -> desired properties, from the base deployment's per-module desired
    sections and the layers' (lowest priority first). A layer's section is
    ``{"whole": desired or None, "paths": nested desired}``."""
    result = {module_id: copy.deepcopy(section["paths"]) for module_id, section in base.items()}
    for layer in layers:
        for module_id, section in layer.items():
            if section["whole"] is not None:
                result[module_id] = copy.deepcopy(section["whole"])
            _merge(result.setdefault(module_id, {}), section["paths"])
    return result


def system_queries(config_id: str, condition: str) -> dict[str, str]:
    """IoT Hub's system metrics of an edge deployment: targeted edge devices, devices
    whose ``$edgeAgent`` twin has it applied, and of those the ones whose agent reported
    the current desired version with success (200) or failure."""
    where = "" if condition.strip() in ("", "*") else f" AND ({condition})"
    applied = (
        "SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent'"
        f" AND configurations.[[{config_id}]].status = 'Applied'"
    )
    reported = " AND properties.desired.$version = properties.reported.lastDesiredVersion"
    return {
        "targetedCount": f"SELECT deviceId FROM devices WHERE capabilities.iotEdge = true{where}",
        "appliedCount": applied,
        "reportedSuccessfulCount": (
            f"{applied}{reported} AND properties.reported.lastDesiredStatus.code = 200"
        ),
        "reportedFailedCount": (
            f"{applied}{reported} AND properties.reported.lastDesiredStatus.code != 200"
        ),
    }
