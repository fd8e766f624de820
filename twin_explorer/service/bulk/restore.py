"""Restore one twin to a version seen earlier: the etag-guarded patch that brings its
tags and desired properties back to that version, built from the twin as the hub holds
it now, shown first and sent like any edit (and reported to the patch log)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twin_explorer.service.bulk.preview import restore_patch
from twin_explorer.service.bulk.run import WriteService, sent_event
from twin_explorer.service.edit_text import canonical, editable_part
from twin_explorer.service.models import Twin
from twin_explorer.twin.events import PatchEvent

SOURCE = "restore"


@dataclass(frozen=True)
class RestorePlan:
    device_id: str
    module_id: str | None
    etag: str  # of the twin the patch was built from: it guards the write
    patch: dict[str, Any]  # minimal, editable shape; empty when already so
    now_text: str  # tags and desired now, canonical
    then_text: str  # tags and desired of the version, canonical


async def plan_restore(service: WriteService, version_twin: dict[str, Any]) -> RestorePlan:
    """Read the twin now and build the patch back to ``version_twin`` (a whole twin)."""
    device_id, module_id = version_twin["deviceId"], version_twin.get("moduleId") or None
    current = await service.get_twin(device_id, module_id)
    return RestorePlan(
        device_id,
        module_id,
        current.etag,
        restore_patch(current.doc, version_twin),
        canonical(editable_part(current.doc)),
        canonical(editable_part(version_twin)),
    )


async def send_restore(
    service: WriteService,
    plan: RestorePlan,
    publish: Callable[[PatchEvent], None] | None = None,
) -> Twin:
    """PATCH with If-Match = the plan's etag; PreconditionFailed when the twin moved on
    (build the plan again from the newest twin)."""
    twin = await service.patch_twin(plan.device_id, plan.module_id, plan.patch, plan.etag)
    if publish is not None:
        publish(sent_event(plan.device_id, plan.module_id, plan.patch, twin, SOURCE))
    return twin
