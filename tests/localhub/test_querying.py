"""Queries through the core: SQL filters, item types and keyset paging (C.8)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.localhub.conftest import sas_body
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.runtime.demo import seed_bulk


@pytest.fixture
def bulk(core: HubCore) -> HubCore:
    seed_bulk(core, 250, 1)
    return core


def _all_pages(core: HubCore, text: str, size: int | str | None) -> list[list[dict]]:
    pages = []
    token = None
    while True:
        page = core.query(text, size, token)
        pages.append(page.items)
        token = page.continuation
        if token is None:
            return pages


def test_paging_250_devices_by_100(bulk: HubCore) -> None:
    pages = _all_pages(bulk, "SELECT * FROM devices", 100)
    assert [len(p) for p in pages] == [100, 100, 50]
    ids = [item["deviceId"] for page in pages for item in page]
    assert ids == sorted(ids) and len(set(ids)) == 250
    assert all("moduleId" not in item for page in pages for item in page)
    assert pages[0][0]["properties"]["desired"]["$version"] == 1


def test_default_page_size_and_exact_fit(bulk: HubCore) -> None:
    assert [len(p) for p in _all_pages(bulk, "SELECT * FROM devices", None)] == [100, 100, 50]
    assert [len(p) for p in _all_pages(bulk, "SELECT * FROM devices", "125")] == [125, 125]
    assert [len(p) for p in _all_pages(bulk, "SELECT * FROM devices", 5000)] == [250]


def test_pages_are_stable_while_twins_change(bulk: HubCore) -> None:
    first = bulk.query("SELECT * FROM devices", 100, None)
    # Changes before and after the cursor do not shift the next page.
    bulk.put_device("a-new-first-device", sas_body(), None)
    bulk.delete_device("device-000000", None)
    second = bulk.query("SELECT * FROM devices", 100, first.continuation)
    assert second.items[0]["deviceId"] == "device-000100"
    assert second.items[-1]["deviceId"] == "device-000199"


def test_filters_over_devices_and_modules(bulk: HubCore) -> None:
    # seed_bulk spreads devices over site-0..site-9 and floors 0..19
    site3 = _all_pages(bulk, "SELECT * FROM devices WHERE tags.site = 'site-3'", 10)
    assert sum(len(p) for p in site3) == 25
    assert len(site3) == 3
    modules = bulk.query(
        "SELECT * FROM devices.modules WHERE deviceId IN ['device-000007', 'device-000008']"
    )
    assert [(i["deviceId"], i["moduleId"]) for i in modules.items] == [
        ("device-000007", "module-0"),
        ("device-000008", "module-0"),
    ]
    assert modules.item_type == "twin"
    none = bulk.query("SELECT * FROM devices WHERE moduleId = 'module-0'")
    assert none.items == [] and none.continuation is None
    bulk.patch_reported("device-000042", "module-0", {"status": "scanning"})
    scanning = bulk.query(
        "SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning'"
        " AND deviceId IN ['device-000042', 'device-000043']"
    )
    assert [i["deviceId"] for i in scanning.items] == ["device-000042"]
    contains = bulk.query("SELECT * FROM devices WHERE CONTAINS(deviceId, '0242')")
    assert [i["deviceId"] for i in contains.items] == ["device-000242"]


def test_identity_fields_are_queryable(bulk: HubCore) -> None:
    bulk.put_device("device-000003", {**sas_body(), "status": "disabled"}, "*")
    bulk.set_connected("device-000005", None, True)
    disabled = bulk.query("SELECT deviceId FROM devices WHERE status = 'disabled'")
    assert disabled.items == [{"deviceId": "device-000003"}]
    connected = bulk.query("SELECT * FROM devices WHERE connectionState = 'Connected'")
    assert [i["deviceId"] for i in connected.items] == ["device-000005"]
    # Module twins carry their device's status.
    modules = bulk.query("SELECT * FROM devices.modules WHERE status = 'disabled'")
    assert [i["deviceId"] for i in modules.items] == ["device-000003"]


def test_projection_and_count_are_raw(bulk: HubCore) -> None:
    page = bulk.query("SELECT deviceId, tags.floor AS floor FROM devices WHERE tags.floor = 19", 5)
    assert page.item_type == "raw"
    assert page.items[0] == {"deviceId": "device-000019", "floor": 19}
    assert page.continuation is not None
    count = bulk.query("SELECT COUNT() AS total FROM devices.modules")
    assert (count.items, count.item_type, count.continuation) == ([{"total": 250}], "raw", None)
    filtered = bulk.query("SELECT COUNT() AS n FROM devices WHERE tags.site = 'site-1'")
    assert filtered.items == [{"n": 25}]


def test_top_limits_across_pages(bulk: HubCore) -> None:
    pages = _all_pages(bulk, "SELECT TOP 150 * FROM devices", 100)
    assert [len(p) for p in pages] == [100, 50]


@pytest.mark.parametrize(
    "text",
    ["", "SELECT", "SELECT * FROM jobs", "DELETE FROM devices", "SELECT * FROM devices WHERE"],
)
def test_bad_queries_are_400(core: HubCore, text: str) -> None:
    with pytest.raises(HubError) as exc:
        core.query(text)
    assert (exc.value.status, exc.value.error_code) == (400, "ArgumentInvalid")


def test_query_length_limit(core: HubCore) -> None:
    pad = " " * (8192 - len("SELECT * FROM devices"))
    assert core.query("SELECT * FROM devices" + pad).items == []
    with pytest.raises(HubError) as exc:
        core.query("SELECT * FROM devices" + pad + " ")
    assert "8192" in exc.value.message


def test_bad_page_sizes_and_tokens(bulk: HubCore) -> None:
    for size in ("0", "-1", "ten"):
        with pytest.raises(HubError) as exc:
            bulk.query("SELECT * FROM devices", size)
        assert exc.value.status == 400
    token = bulk.query("SELECT * FROM devices", 10).continuation
    assert token is not None
    with pytest.raises(HubError) as exc:
        bulk.query("SELECT * FROM devices.modules", 10, token)
    assert "different query" in exc.value.message
    for bad in ("garbage", token[:-2] + "xx"):
        with pytest.raises(HubError) as exc:
            bulk.query("SELECT * FROM devices", 10, bad)
        assert exc.value.status == 400


def test_tokens_survive_a_restart_but_not_another_hub(bulk: HubCore, tmp_path) -> None:
    token = bulk.query("SELECT * FROM devices", 100).continuation
    path = bulk.store.path.parent
    bulk.close()
    reopened = HubCore.open(path)
    try:
        assert reopened.query("SELECT * FROM devices", 100, token).items[0]["deviceId"] == (
            "device-000100"
        )
    finally:
        reopened.close()
    other = HubCore.open(tmp_path / "other")
    try:
        with pytest.raises(HubError):
            other.query("SELECT * FROM devices", 100, token)
    finally:
        other.close()


_ID_ALPHABET = "abcXYZ019-:.+%_#*?!(),=@;$'"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.sets(st.text(_ID_ALPHABET, min_size=1, max_size=8), min_size=0, max_size=40),
    size=st.integers(1, 15),
)
def test_paging_returns_every_twin_once_in_order(core: HubCore, ids: set[str], size: int) -> None:
    with core.store.transaction():  # one commit per example keeps this fast
        for device_id in core.store.conn.execute("SELECT device_id FROM devices").fetchall():
            core.delete_device(device_id[0], None)
        for device_id in ids:
            core.put_device(device_id, sas_body(), None)
            core.put_module(device_id, "m", {}, None)
    for text in ("SELECT * FROM devices", "SELECT * FROM devices.modules"):
        pages = _all_pages(core, text, size)
        got = [item["deviceId"] for page in pages for item in page]
        assert got == sorted(ids)
        assert all(0 < len(page) <= size for page in pages[:-1])
        assert len(pages) == max(1, -(-len(ids) // size))
