"""Core presence and direct-method routing with a fake delivery target (no transport)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.localhub.conftest import sas_body
from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.core.events import Connected, Disconnected, HubEvent, TwinChanged
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError


class FakeTarget:
    """A connection as the core sees it: records what the core delivers."""

    def __init__(self, accepts_methods: bool = True, accepts_c2d: bool = False) -> None:
        self.accepts_methods = accepts_methods
        self.accepts_c2d = accepts_c2d
        self.c2d: list[Any] = []
        self.methods: list[tuple[str, str, Any]] = []
        self.desired: list[dict] = []
        self.closed: str | None = None

    def deliver_method(self, name: str, rid: str, payload: bytes) -> bool:
        self.methods.append((name, rid, json.loads(payload)))
        return True

    def deliver_desired(self, patch: dict) -> None:
        self.desired.append(patch)

    def deliver_c2d(self, message: Any) -> bool:
        self.c2d.append(message)
        return True

    def close(self, reason: str) -> None:
        self.closed = reason


def _events(core: HubCore) -> list[HubEvent]:
    seen: list[HubEvent] = []
    core.events.subscribe(seen.append)
    return seen


def test_presence_publishes_connection_state_and_one_connection_per_identity(
    core: HubCore,
) -> None:
    core.put_device("d1", sas_body(), None)
    seen = _events(core)
    first, second = FakeTarget(), FakeTarget()
    who = Identity("d1", None)
    core.presence.connect(who, first)
    core.presence.connect(who, second)  # the newer connection takes over
    assert first.closed == "another connection took over this identity"
    assert core.presence.online() == ["d1"] and core.presence.target("d1") is second
    assert core.service_statistics() == {"connectedDeviceCount": 1}
    assert not core.presence.disconnect(who, first)  # no longer the current one
    assert core.presence.disconnect(who, second)
    assert core.presence.online() == []
    kinds = [type(e) for e in seen]
    assert kinds == [Connected, Connected, Disconnected]
    assert core.get_device("d1")["connectionState"] == "Disconnected"


def test_desired_patches_reach_the_target_and_the_bus(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    target = FakeTarget()
    core.presence.connect(Identity("d1", None), target)
    seen = _events(core)
    core.patch_twin("d1", None, {"properties": {"desired": {"x": 1}}}, None)
    assert target.desired == [{"x": 1, "$version": 2}]
    changes = [e for e in seen if isinstance(e, TwinChanged)]
    assert [(c.section, c.version, c.patch) for c in changes] == [("desired", 2, {"x": 1})]


def test_deleting_an_identity_closes_its_connection(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    core.put_module("d1", "m1", {}, None)
    device, module = FakeTarget(), FakeTarget()
    core.presence.connect(Identity("d1", None), device)
    core.presence.connect(Identity("d1", "m1"), module)
    core.delete_device("d1", None)
    assert device.closed == "identity deleted" and module.closed == "identity deleted"


async def test_methods_are_routed_to_the_target_and_answered(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    who = Identity("d1", None)
    target = FakeTarget()
    core.presence.connect(who, target)
    call = asyncio.ensure_future(core.methods.invoke_method("d1", None, "reboot", {"n": 1}, 5, 0))
    await asyncio.sleep(0)
    ((name, rid, payload),) = target.methods
    assert (name, payload) == ("reboot", {"n": 1})
    assert core.devices.method_response(who, rid, 201, b'{"ok":true}')
    assert await call == (201, {"ok": True})
    assert not core.devices.method_response(who, rid, 200, b"{}")  # answered once


async def test_a_method_call_waits_for_the_target_to_take_methods(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    who = Identity("d1", None)
    target = FakeTarget(accepts_methods=False)
    core.presence.connect(who, target)
    call = asyncio.ensure_future(core.methods.invoke_method("d1", None, "m", None, 5, 5))
    await asyncio.sleep(0.01)
    assert target.methods == []  # connected, but not subscribed yet
    target.accepts_methods = True
    core.presence.ready(who)
    await asyncio.sleep(0.01)
    ((_, rid, _),) = target.methods
    core.devices.method_response(who, rid, 200, b"")
    assert await call == (200, None)
    with pytest.raises(HubError) as error:
        await core.methods.invoke_method("other", None, "m", None, 5, 0)
    assert error.value.status == 404


def test_a_resent_reported_patch_is_merged_once(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    who = Identity("d1", None)
    first = core.devices.reported_patch(who, "7", b'{"a": 1}')
    again = core.devices.reported_patch(who, "7", b'{"a": 1}')
    assert first == again and (first.status, first.version) == (204, 2)
    assert core.get_twin("d1")["properties"]["reported"]["$version"] == 2
    bad = core.devices.reported_patch(who, "8", b"not json")
    assert bad.status == 400


def test_c2d_waits_for_the_device_and_stays_locked_until_completed(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    core.send_c2d("d1", b"early", {"k": "v"}, message_id="m1")  # offline: it waits
    target = FakeTarget(accepts_c2d=True)
    core.presence.connect(Identity("d1", None), target)
    assert [(m.message_id, m.body, m.properties) for m in target.c2d] == [
        ("m1", b"early", {"k": "v"})
    ]
    core.send_c2d("d1", b"later")
    assert [m.body for m in target.c2d] == [b"early", b"later"]
    assert core.c2d.depth("d1") == 2  # delivered, locked until the device takes them
    assert core.complete_c2d("d1", target.c2d[0].lock_token)
    assert not core.complete_c2d("d1", target.c2d[0].lock_token)  # once
    assert core.c2d.depth("d1") == 1
    with pytest.raises(HubError) as info:
        core.send_c2d("nobody", b"x")
    assert info.value.status == 404


def test_c2d_is_not_offered_to_a_connection_that_does_not_take_it(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    target = FakeTarget(accepts_c2d=False)
    core.presence.connect(Identity("d1", None), target)
    core.send_c2d("d1", b"kept")
    assert target.c2d == [] and core.c2d.depth("d1") == 1
    target.accepts_c2d = True
    core.presence.ready(Identity("d1", None))  # it subscribed
    assert [m.body for m in target.c2d] == [b"kept"]
    assert target.c2d[0].delivery_count == 1
