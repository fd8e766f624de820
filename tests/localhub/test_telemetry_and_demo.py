"""Telemetry in the event log, write-behind activity, demo seeding and the bulk seeder."""

from __future__ import annotations

from pathlib import Path

from tests.localhub.conftest import FakeClock, sas_body
from twin_explorer.localhub.core.context import ACTIVITY_FLUSH_SECONDS
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.runtime.demo import seed_bulk, seed_demo
from twin_explorer.localhub.store.event_log import Retention


def test_telemetry_retention_keeps_the_newest(core: HubCore) -> None:
    core.event_log.retention = Retention(max_events=3)
    core.put_device("d1", sas_body(), None)
    for i in range(5):
        core.record_telemetry("d1", None, {"i": str(i)}, {"$.ct": "application/json"}, b"%d" % i)
    assert core.telemetry_count("d1") == 5
    recent = core.telemetry("d1")
    assert [m["body"] for m in recent] == [b"2", b"3", b"4"]
    assert [m["sequence"] for m in recent] == [3, 4, 5]
    assert recent[-1]["properties"] == {"i": "4"}
    assert recent[-1]["systemProperties"] == {"$.ct": "application/json"}
    assert [m["body"] for m in core.telemetry("d1", None, 1)] == [b"4"]
    assert core.telemetry("d1", "m1") == [] and core.telemetry_count("d1", "m1") == 0


def test_deleting_an_identity_forgets_its_telemetry(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    core.put_module("d1", "m1", {}, None)
    core.record_telemetry("d1", "m1", {}, {}, b"x")
    core.record_telemetry("d1", None, {}, {}, b"y")
    core.delete_module("d1", "m1", None)
    assert core.telemetry_count("d1", "m1") == 0
    assert core.telemetry_count("d1") == 1
    core.delete_device("d1", None)
    assert core.telemetry_count("d1") == 0


def test_activity_is_written_behind(core: HubCore, clock: FakeClock) -> None:
    core.put_device("d1", sas_body(), None)
    clock.advance(1)
    core.record_telemetry("d1", None, {}, {}, b"x")

    def stored_activity() -> str:
        row = core.store.conn.execute(
            "SELECT json_extract(identity, '$.lastActivityTime') FROM devices"
        ).fetchone()
        return row[0]

    assert stored_activity() == "0001-01-01T00:00:00Z"  # only in memory so far
    core.ctx._last_flush -= ACTIVITY_FLUSH_SECONDS  # as if the flush interval had passed
    clock.advance(1)
    core.touch("d1", None)
    assert stored_activity() == "2026-01-01T00:00:02.0000000Z"
    clock.advance(1)
    core.touch("d1", None)
    core.flush()
    assert stored_activity() == "2026-01-01T00:00:03.0000000Z"


def test_demo_seeds_once(hub_dir: Path) -> None:
    with HubCore.open(hub_dir) as core:
        seed_demo(core)
        devices = {d["deviceId"]: d for d in core.list_devices()}
        assert {"myFirstDevice", "edge-gateway-01", "legacy-meter-09"} <= set(devices)
        assert [m["moduleId"] for m in core.list_modules("myFirstDevice")] == ["myFirstModule"]
        assert devices["legacy-meter-09"]["status"] == "disabled"
        assert devices["edge-gateway-01"]["capabilities"] == {"iotEdge": True}
        sensor = core.get_twin("thermostat-lobby", "climate")
        assert sensor["properties"]["desired"]["thresholds"]["high"] == 26.5
        assert sensor["properties"]["reported"]["firmware"] == "1.4.2"
        assert core.get_twin("thermostat-lobby")["tags"]["site"] == "seattle"
        count = core.query("SELECT COUNT() AS n FROM devices").items[0]["n"]
        assert count == len(devices)
        core.delete_device("myFirstDevice", None)
        assert seed_demo(core) is False
    with HubCore.open(hub_dir) as core:
        seed_demo(core)
        assert "myFirstDevice" not in {d["deviceId"] for d in core.list_devices()}


def test_bulk_seed_builds_normal_identities(core: HubCore) -> None:
    seed_bulk(core, 12, 2, prefix="b")
    assert core.registry_statistics()["totalDeviceCount"] == 12
    assert len(core.list_modules("b-000011")) == 2
    device = core.get_device("b-000005")
    module = core.get_module("b-000005", "module-1")
    assert device["authentication"]["symmetricKey"] != module["authentication"]["symmetricKey"]
    twin = core.get_twin("b-000005")
    assert twin["tags"] == {"site": "site-5", "floor": 5}
    assert twin["deviceEtag"] == device["etag"]
    bulk_twin = core.get_twin("b-000005", "module-1")
    assert bulk_twin["tags"] == {}
    # The fast path builds the same document the normal path does.
    core.put_module("b-000005", "normal", {}, None)
    normal = core.get_twin("b-000005", "normal")
    assert list(bulk_twin) == list(normal)
    assert bulk_twin["properties"] == normal["properties"]
    # Bulk identities behave like any other.
    patched = core.patch_twin("b-000005", "module-1", {"properties": {"desired": {"a": 1}}}, None)
    assert patched["version"] == 2
    etags = {d["etag"] for d in core.list_devices()}
    assert len(etags) == 12
