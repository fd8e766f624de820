"""Bulk runs against a real in-process local hub, through the app's HubService."""

from __future__ import annotations

import asyncio
import csv
import gc
import json

import pytest

from tests.hubfixtures import RestClient, service_for
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.bulk.change import ChangeError, change_from_keys, parse_change
from twin_explorer.service.bulk.choose import SelectionError, TwinSelection, count
from twin_explorer.service.bulk.preview import Plan
from twin_explorer.service.bulk.report import write_report
from twin_explorer.service.bulk.run import BulkRun, Outcome, RunState
from twin_explorer.service.bulk.store import list_runs

BIG = "x" * 4000  # two of these put tags over 8 KB with the change


@pytest.fixture
async def service(hub_server: HubServer):
    service = service_for(hub_server, sdk_retries=False)
    yield service
    await service.aclose()


async def make_devices(service, tags_by_device: dict[str, dict]) -> None:
    for device_id, tags in tags_by_device.items():
        await service.create_device(device_id)
        if tags:
            await service.patch_twin(device_id, None, {"tags": tags}, None)


def change(text: str):
    return parse_change(text)


async def test_preview_says_per_twin_what_changes_what_is_already_so_and_what_is_blocked(
    service, tmp_path
) -> None:
    await make_devices(
        service,
        {
            "t-1": {"kind": "thermostat", "building": 42},
            "t-2": {"kind": "thermostat", "building": 43},
            "t-3": {"kind": "thermostat", "a": BIG, "b": BIG},
            "other": {"kind": "lamp"},
        },
    )
    selection = TwinSelection("SELECT * FROM devices WHERE tags.kind = 'thermostat'")
    assert await count(service, selection) == 3
    run = await BulkRun.preview(
        service, selection, change('{"tags": {"building": 43, "note": "' + "n" * 300 + '"}}'),
        root=tmp_path,
    )  # fmt: skip
    plans = {item.device_id: item for item in run.items}
    assert set(plans) == {"t-1", "t-2", "t-3"}
    assert plans["t-1"].plan is Plan.CHANGE
    assert plans["t-1"].patch == {"tags": {"building": 43, "note": "n" * 300}}
    rows = plans["t-1"].diff()
    assert any(row.left and '"building": 42' in row.left for row in rows)
    assert any(row.right and '"building": 43' in row.right for row in rows)
    assert plans["t-2"].plan is Plan.CHANGE  # the note is new there
    assert plans["t-3"].plan is Plan.BLOCKED
    assert "8192" in plans["t-3"].reason

    already = await BulkRun.preview(
        service, TwinSelection.of([("t-2", None)]), change('{"tags": {"building": 43}}'),
        root=tmp_path,
    )  # fmt: skip
    assert [i.plan for i in already.items] == [Plan.SKIPPED]
    assert already.items[0].reason == "already so"


async def test_apply_writes_with_the_previewed_etag_and_lists_conflicts(service, tmp_path) -> None:
    await make_devices(service, {f"d-{i}": {"group": "g", "mode": "old"} for i in range(6)})
    run = await BulkRun.preview(
        service,
        TwinSelection("SELECT * FROM devices WHERE tags.group = 'g'"),
        change('{"tags": {"mode": "new"}, "properties": {"desired": {"interval": 30}}}'),
        root=tmp_path,
    )
    # Another client, between preview and apply: d-0 gets the very key the run writes,
    # d-1 only a key the run does not touch.
    await service.patch_twin("d-0", None, {"tags": {"mode": "theirs"}}, None)
    await service.patch_twin("d-1", None, {"tags": {"owner": "ops"}}, None)
    events = []
    progress = await run.apply(service, concurrency=3, publish=events.append)

    assert progress.state is RunState.FINISHED
    assert run.results[("d-0", None)].outcome is Outcome.CONFLICT
    assert "tags.mode" in run.results[("d-0", None)].detail
    assert (await service.get_twin("d-0")).tags["mode"] == "theirs"  # not overwritten
    assert run.results[("d-1", None)].outcome is Outcome.APPLIED
    d1 = await service.get_twin("d-1")
    assert d1.tags == {"group": "g", "mode": "new", "owner": "ops"}
    assert d1.desired["interval"] == 30
    assert progress.counts[Outcome.APPLIED] == 5
    assert progress.counts[Outcome.CONFLICT] == 1
    assert sorted(e.device_id for e in events) == [f"d-{i}" for i in range(1, 6)]
    assert all(e.source == f"bulk:{run.id}" and e.direction.value == "sent" for e in events)

    # The report, exported both ways.
    jsonl, table = tmp_path / "report.jsonl", tmp_path / "report.csv"
    assert write_report(jsonl, run.report()) == 6
    write_report(table, run.report())
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {line["identity"]: line["outcome"] for line in lines}["d-0"] == "conflict"
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert {row["identity"]: row["outcome"] for row in rows}["d-1"] == "applied"


async def test_a_cancelled_run_resumes_from_its_folder_and_reverts_twin_by_twin(
    service, tmp_path
) -> None:
    await make_devices(service, {f"r-{i:02d}": {"v": 1} for i in range(20)})
    run = await BulkRun.preview(
        service, TwinSelection("SELECT * FROM devices"), change('{"tags": {"v": 2}}'),
        root=tmp_path,
    )  # fmt: skip

    def cancel_after_five(event) -> None:
        if len(run.results) >= 4:
            run.cancel()

    first = await run.apply(service, concurrency=1, publish=cancel_after_five)
    assert first.state is RunState.CANCELLED
    assert 0 < first.done < 20

    again = BulkRun.load(list_runs(tmp_path)[0].path)  # as after a restart
    assert again.id == run.id and again.state is RunState.CANCELLED
    assert len(again.pending()) == 20 - first.done
    done = await again.apply(service)
    assert done.state is RunState.FINISHED
    assert done.counts[Outcome.APPLIED] == 20
    values = [(await service.get_twin(f"r-{i:02d}")).tags["v"] for i in range(20)]
    assert values == [2] * 20

    # Someone changes one twin after the run; the revert leaves that one alone.
    await service.patch_twin("r-03", None, {"tags": {"v": 7}}, None)
    await service.patch_twin("r-04", None, {"tags": {"other": True}}, None)
    revert = again.revert(tmp_path)
    assert revert.plan["reverts"] == again.id
    reverted = await revert.apply(service)
    assert reverted.counts[Outcome.APPLIED] == 19
    assert revert.results[("r-03", None)].outcome is Outcome.CONFLICT
    assert (await service.get_twin("r-03")).tags["v"] == 7
    assert (await service.get_twin("r-04")).tags == {"v": 1, "other": True}
    assert (await service.get_twin("r-00")).tags == {"v": 1}


async def test_a_removed_key_is_put_back_by_the_revert(service, tmp_path) -> None:
    await make_devices(service, {"k-1": {"keep": 1, "drop": {"deep": [1, 2]}}})
    run = await BulkRun.preview(
        service, TwinSelection.of([("k-1", None)]),
        change_from_keys({"tags.added.x": 5}, ["tags.drop"]), root=tmp_path,
    )  # fmt: skip
    await run.apply(service)
    assert (await service.get_twin("k-1")).tags == {"keep": 1, "added": {"x": 5}}
    await run.revert(tmp_path).apply(service)
    assert (await service.get_twin("k-1")).tags == {"keep": 1, "drop": {"deep": [1, 2]}}


async def test_throttled_writes_wait_for_retry_after_and_all_finish(
    hub_server: HubServer, service, tmp_path
) -> None:
    await make_devices(service, {f"th-{i:02d}": {} for i in range(30)})
    rest = RestClient.for_server(hub_server)
    try:
        status, state = await rest.json(
            "PUT", "/_localhub/throttle",
            json_body={"twinWritesPerSecond": 40, "retryAfterSeconds": 0.2, "burst": 5},
        )  # fmt: skip
        assert status == 200, state
        run = await BulkRun.preview(
            service, TwinSelection("SELECT * FROM devices"), change('{"tags": {"t": 1}}'),
            root=tmp_path,
        )  # fmt: skip
        done = await run.apply(service, concurrency=8)
        _, state = await rest.json("GET", "/_localhub/throttle")
    finally:
        await rest.close()
    assert state["refused"] > 0
    assert done.throttled > 0
    assert done.counts[Outcome.APPLIED] == 30
    assert done.counts[Outcome.FAILED] == 0


async def test_the_throttle_route_refuses_bad_settings(hub_rest) -> None:
    status, body = await hub_rest.json(
        "PUT", "/_localhub/throttle", json_body={"twinWritesPerSecond": -1}
    )
    assert status == 400 and "twinWritesPerSecond" in body["Message"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ('{"tags": ', "Line 1"),
        ('{"properties": {"reported": {}}}', "only 'desired'"),
        ('{"tags": {"a b": 1}}', "a b"),
        ('{"deviceId": "x"}', "deviceId"),
        ("{}", "changes nothing"),
    ],
)
def test_a_bad_change_says_what_is_wrong(text, words) -> None:
    with pytest.raises(ChangeError, match=words):
        parse_change(text)


def test_only_whole_twin_queries_choose_twins() -> None:
    with pytest.raises(SelectionError, match="SELECT \\* FROM devices"):
        TwinSelection("SELECT deviceId FROM devices")
    assert (
        TwinSelection("select * from devices.modules where moduleId = 'm'").count_query()
        == "SELECT COUNT() AS total FROM devices.modules where moduleId = 'm'"
    )


async def test_preview_yields_to_the_loop(service, tmp_path) -> None:
    await make_devices(service, {f"y-{i:03d}": {} for i in range(250)})
    beats = 0

    async def beat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(beat())
    try:
        await BulkRun.preview(
            service, TwinSelection("SELECT * FROM devices"), change('{"tags": {"y": 1}}'),
            root=tmp_path,
        )  # fmt: skip
    finally:
        ticker.cancel()
    assert beats > 3


def test_a_scheduled_job_request_carries_the_same_selection_and_change() -> None:
    from twin_explorer.service.bulk.jobs import JobUnsuitable, job_request

    change = parse_change('{"tags": {"building": 43}}')
    body = job_request(
        "j1", TwinSelection("SELECT * FROM devices WHERE tags.site = 'x'"), change, "2026-01-01"
    )
    assert body["type"] == "scheduleUpdateTwin"
    assert body["queryCondition"] == "tags.site = 'x'"
    assert body["updateTwin"] == {"etag": "*", "tags": {"building": 43}}
    ids = TwinSelection.of([("a", None), ("o'b", None)])
    assert job_request("j2", ids, change, "t")["queryCondition"] == "deviceId IN ['a', 'o''b']"
    with pytest.raises(JobUnsuitable, match="module"):
        job_request("j3", TwinSelection("SELECT * FROM devices.modules"), change, "t")


async def test_a_throttled_write_says_how_long_the_hub_asked_to_wait(
    hub_server: HubServer, service
) -> None:
    from twin_explorer.service import errors

    await service.create_device("slow")
    rest = RestClient.for_server(hub_server)
    try:
        await rest.json(
            "PUT", "/_localhub/throttle",
            json_body={"twinWritesPerSecond": 0.001, "retryAfterSeconds": 2.5, "burst": 1},
        )  # fmt: skip
        await service.patch_twin("slow", None, {"tags": {"a": 1}}, None)  # the one token
        with pytest.raises(errors.Throttled) as caught:
            await service.patch_twin("slow", None, {"tags": {"a": 2}}, None)
        await rest.json("DELETE", "/_localhub/throttle")
        await service.patch_twin("slow", None, {"tags": {"a": 3}}, None)  # off again
    finally:
        await rest.close()
    assert caught.value.retry_after == 2.5
    assert "throttling" in str(caught.value)


async def test_a_preview_and_a_run_keep_the_heap_they_found_out_of_full_collections(
    service, tmp_path
) -> None:
    """A full collection walks every tracked object with the loop stopped: on the app's
    heap that stalled the window 50-100 ms during a preview. What lives as long as the run
    (the app's heap, then the preview's items) is frozen, so those passes skip it."""
    await make_devices(service, {"h-1": {}, "h-2": {}})
    gc.unfreeze()
    try:
        heap = [{"n": i} for i in range(50_000)]  # the app's long-lived objects
        run = await BulkRun.preview(
            service, TwinSelection.of([("h-1", None), ("h-2", None)]),
            change('{"tags": {"heap": 1}}'), root=tmp_path,
        )  # fmt: skip
        assert gc.get_freeze_count() >= len(heap)
        gc.unfreeze()
        progress = await run.apply(service)
        assert progress.counts[Outcome.APPLIED] == 2
        assert gc.get_freeze_count() >= len(heap)
    finally:
        gc.unfreeze()
