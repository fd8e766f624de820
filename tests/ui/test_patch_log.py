"""The patch log pane in the real main window, fed by every source it can see here.

A real local hub runs in-process on the qasync loop (the service SDK calls run on the
service's threads, so the loop stays free to answer them); the backoff test uses the
``twin-explorer hub`` subprocess instead, so it can be stopped and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.iot.device import ProxyOptions
from azure.iot.device.aio import IoTHubModuleClient
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from tests.hubfixtures import service_for
from tests.service.localhub import start_server
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service.hub import HubService
from twin_explorer.service.patchlog import read_jsonl
from twin_explorer.twin.events import Direction, PatchEvent, Section
from twin_explorer.ui.main_window import MainWindow
from twin_explorer.ui.panes.patch_log.model import COLUMNS, PATCH
from twin_explorer.ui.panes.patch_log.watching import saved_interval
from twin_explorer.ui.panes.tree.device_tree_model import RowRole

TIME = "2026-01-01T00:00:00.0000000Z"


def make_window(qtbot) -> MainWindow:
    window = open_window(qtbot)
    window.watch.set_interval(1.0)
    window.watch.watcher.interval = 0.2  # faster than the menu offers: tests wait less
    return window


@contextlib.asynccontextmanager
async def running_hub(data_dir: Path) -> AsyncIterator[HubServer]:
    async with start_server(data_dir, mqtt=True) as server:
        yield server


async def finish(window: MainWindow, *services: HubService | None) -> None:
    """Close the window's async parts; ``HubService.aclose`` waits for its threads."""
    services = (window.session.service, *services)
    await window.shutdown()
    for service in services:
        if service is not None:
            await service.aclose()


async def select_in_tree(window: MainWindow, device_id: str, module_id: str | None = None):
    """Click the twin in the device tree, as a user would (modules load on expand)."""
    model, view = window.tree_pane.model, window.tree_pane.view

    def find(parent: QModelIndex, wanted: str) -> QModelIndex | None:
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            found = index.data(RowRole)
            if found is not None and (found.module_id or found.device_id) == wanted:
                return index
        return None

    await until(lambda: find(QModelIndex(), device_id) is not None, what=f"{device_id} listed")
    index = find(QModelIndex(), device_id)
    if module_id is not None:
        view.expand(index)
        await until(lambda: find(index, module_id) is not None, what=f"{module_id} listed")
        index = find(index, module_id)
    view.setCurrentIndex(index)


def table(window: MainWindow) -> list[list[str]]:
    model = window.patch_log.model
    return [
        [model.index(row, column).data() for column in range(len(COLUMNS))]
        for row in range(model.rowCount())
    ]


def rows_of(window: MainWindow, direction: Direction) -> list[PatchEvent]:
    return [e for e in window.patch_log.visible_events() if e.direction is direction]


def event(n: int, **kw) -> PatchEvent:
    base = dict(
        device_id="d1",
        module_id=None,
        direction=Direction.SENT,
        section=Section.DESIRED,
        body={"n": n},
        version=n,
        time=TIME,
    )
    return PatchEvent(**{**base, **kw})


# -- every source ------------------------------------------------------------------------


def test_the_log_shows_sent_observed_and_reported_patches(qtbot, qrun, tmp_path):
    window = make_window(qtbot)

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            other = service_for(server, sdk_retries=False)
            await other.create_device("pump")
            await other.create_module("pump", "ctrl")
            await window.session.use("Local hub", service_for(server, sdk_retries=False))
            service = window.session.service
            await select_in_tree(window, "pump", "ctrl")
            await until(lambda: window.watch.watcher.watched() == ["pump/ctrl"], what="watch")
            await until(lambda: window.history.versions("pump/ctrl"), what="baseline")

            # 1. The app sends a desired patch and publishes it (as the editor does).
            twin = await service.patch_twin(
                "pump", "ctrl", {"properties": {"desired": {"speed": 5}}}, None
            )
            version = twin.doc["properties"]["desired"]["$version"]
            window.patches.publish(
                PatchEvent("pump", "ctrl", Direction.SENT, Section.DESIRED, {"speed": 5}, version)
            )
            # 2. Someone else changes the tags: observed by polling.
            await other.patch_twin("pump", "ctrl", {"tags": {"site": "lab"}}, None)
            await until(lambda: rows_of(window, Direction.OBSERVED), what="observed tags")

            # 3. A device SDK module client reports: observed as a reported change...
            identity = await service.get_module("pump", "ctrl")
            client = IoTHubModuleClient.create_from_connection_string(
                service.connection_string(identity),
                server_verification_cert=server.certificates.ca_cert.read_text(),
                proxy_options=ProxyOptions("HTTP", "127.0.0.1", server.proxy_port),
            )
            try:
                await client.connect()
                await client.patch_twin_reported_properties({"rpm": 1200})
                await until(
                    lambda: any(
                        e.section is Section.REPORTED for e in window.patch_log.visible_events()
                    ),
                    what="observed reported",
                )
                # ...and when the app's own simulated module reports and says so, it
                # appears once, as REPORTED, not again as observed.
                await client.patch_twin_reported_properties({"rpm": 1300})
                window.patches.publish(
                    PatchEvent(
                        "pump",
                        "ctrl",
                        Direction.REPORTED,
                        Section.REPORTED,
                        {"rpm": 1300},
                        source="simulator:ctrl",
                    )
                )
                await until(
                    lambda: (
                        window.history.latest("pump/ctrl").twin["properties"]["reported"].get("rpm")
                        == 1300
                    ),
                    what="the own report seen by a poll",
                )
                await until(lambda: window.patch_log.model.queued == 0, what="flushed")
            finally:
                await client.shutdown()
            await finish(window, other)

    qrun(scenario(), timeout=90)
    events = window.patch_log.visible_events()
    shown = [(e.direction, e.section, e.body) for e in events]
    assert shown == [
        (Direction.SENT, Section.DESIRED, {"speed": 5}),
        (Direction.OBSERVED, Section.TAGS, {"site": "lab"}),
        (Direction.OBSERVED, Section.REPORTED, {"rpm": 1200}),
        (Direction.REPORTED, Section.REPORTED, {"rpm": 1300}),
    ]
    first = table(window)[0]
    assert first[1:5] == ["pump/ctrl", "sent", "desired", str(events[0].version)]
    assert first[PATCH] == '{"speed":5}'
    assert first[0] == events[0].time[11:23]
    observed_reported = events[2]
    assert observed_reported.version is not None and observed_reported.source == "watch"


# -- filters, export ---------------------------------------------------------------------


def publish_mix(window: MainWindow) -> None:
    for n, (device, module, direction, body) in enumerate(
        [
            ("pump-1", None, Direction.SENT, {"speed": 10}),
            ("pump-2", "ctrl", Direction.REPORTED, {"rpm": 1}),
            ("valve-1", None, Direction.OBSERVED, {"open": True}),
            ("pump-1", None, Direction.OBSERVED, {"speed": 99}),
            ("valve-1", "io", Direction.RECEIVED, {"speed": 3}),
        ]
    ):
        window.patches.publish(
            event(n, device_id=device, module_id=module, direction=direction, body=body)
        )
    window.patch_log.model.flush()


def identities(window: MainWindow) -> list[str]:
    return [row[1] for row in table(window)]


def test_filters_by_identity_direction_and_text(qtbot):
    window = make_window(qtbot)
    publish_mix(window)
    log = window.patch_log
    assert len(table(window)) == 5

    QTest.keyClicks(log.identity_edit, "PUMP")
    qtbot.waitUntil(lambda: len(table(window)) == 3)  # after the typing pause
    assert identities(window) == ["pump-1", "pump-2/ctrl", "pump-1"]

    QTest.mouseClick(log.direction_buttons[Direction.OBSERVED], Qt.MouseButton.LeftButton)
    assert identities(window) == ["pump-1"]
    assert table(window)[0][PATCH] == '{"speed":99}'

    log.identity_edit.clear()
    QTest.keyClicks(log.text_edit, "speed")
    qtbot.waitUntil(lambda: len(table(window)) == 1 and identities(window) == ["pump-1"])
    QTest.mouseClick(log.direction_buttons[Direction.RECEIVED], Qt.MouseButton.LeftButton)
    assert identities(window) == ["pump-1", "valve-1/io"]  # observed or received

    # New events are filtered as they arrive.
    window.patches.publish(event(9, device_id="x", direction=Direction.OBSERVED, body={"speed": 0}))
    window.patches.publish(event(9, device_id="y", direction=Direction.SENT, body={"speed": 0}))
    log.model.flush()
    assert identities(window) == ["pump-1", "valve-1/io", "x"]
    log.set_filter()
    assert len(table(window)) == 7
    assert "7 rows" in log.status.text()


def test_export_writes_exactly_what_the_table_shows(qtbot, tmp_path):
    window = make_window(qtbot)
    publish_mix(window)
    window.patch_log.set_filter(identity="pump")
    path = tmp_path / "log.jsonl"
    assert window.patch_log.export(path) == 3

    lines = path.read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    shown = table(window)
    assert len(objects) == len(shown) == 3
    for obj, row in zip(objects, shown, strict=True):
        assert obj["time"][11:23] == row[0]
        assert [obj["identity"], obj["direction"], obj["section"], str(obj["version"])] == row[1:5]
        compact = json.dumps(obj["body"], separators=(",", ":"), sort_keys=True)
        assert compact == row[PATCH]


def test_export_through_the_file_dialog(qtbot, tmp_path):
    window = make_window(qtbot)
    publish_mix(window)
    window.patch_log_actions["export"].trigger()
    (dialog,) = [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, QFileDialog) and w.objectName() == "exportLogDialog"
    ]
    assert dialog is not None and dialog.isVisible() and dialog.isModal()
    target = tmp_path / "chosen.jsonl"
    with qtbot.waitSignal(window.patch_log.exported) as done:
        dialog.fileSelected.emit(str(target))  # what the dialog does on Save
    assert done.args == [str(target), 5]
    assert len(read_jsonl(target)) == 5
    dialog.reject()

    # A folder that does not exist: plain words in the message bar, no traceback.
    dialog = window.patch_log.show_export_dialog()
    dialog.fileSelected.emit(str(tmp_path / "missing" / "x.jsonl"))
    assert window.notice.text().startswith("Could not export the patch log to ")
    dialog.reject()


# -- bounded, batched --------------------------------------------------------------------


def test_50k_events_leave_capacity_rows(qtbot, qrun):
    window = make_window(qtbot)
    model = window.patch_log.model
    assert model.capacity == 10_000
    removed: list[int] = []
    model.rowsRemoved.connect(lambda _p, first, last: removed.append(last - first + 1))

    async def scenario() -> None:
        for start in range(0, 50_000, 5_000):
            for n in range(start, start + 5_000):
                window.patches.publish(event(n))
            await until(lambda: model.queued == 0, what="the batch flushed")

    qrun(scenario(), timeout=120)
    assert model.rowCount() == 10_000
    assert model.log.total == 10_000 and model.log.dropped == 40_000
    assert sum(removed) == 40_000
    assert model.event_at(0).body == {"n": 40_000}
    assert model.event_at(model.rowCount() - 1).body == {"n": 49_999}
    assert "10,000 rows" in window.patch_log.status.text()


def test_a_burst_of_1000_events_is_one_insert(qtbot):
    window = make_window(qtbot)
    model = window.patch_log.model
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    for n in range(1000):
        window.patches.publish(event(n))
    assert inserts == []  # nothing yet: the batch waits for its 50 ms
    qtbot.waitUntil(lambda: model.rowCount() == 1000)
    assert inserts == [(0, 999)]


def test_model_holds_up_under_qtmodeltester_while_events_arrive(qtbot, qtmodeltester):
    window = make_window(qtbot)
    model = window.patch_log.model
    model.capacity = 100
    qtmodeltester.check(model)
    for burst in range(4):
        for n in range(burst * 40, burst * 40 + 60):
            window.patches.publish(event(n, direction=list(Direction)[n % 4]))
        qtbot.waitUntil(lambda: model.queued == 0)
    window.patch_log.set_filter(directions={Direction.OBSERVED})
    window.patches.publish(event(1, direction=Direction.OBSERVED))
    model.flush()
    window.patch_log.set_paused(True)
    window.patches.publish(event(2, direction=Direction.OBSERVED))
    model.flush()
    window.patch_log.set_paused(False)
    window.patch_log.clear()
    window.patches.publish(event(3))
    model.flush()
    qtmodeltester.check(model)


# -- pause, clear, following -------------------------------------------------------------


def test_pause_holds_rows_and_resume_shows_them(qtbot):
    window = make_window(qtbot)
    log = window.patch_log
    window.patches.publish(event(1))
    log.model.flush()
    QTest.mouseClick(log.pause_button, Qt.MouseButton.LeftButton)
    assert log.paused and log.pause_button.text() == "Resume"
    for n in (2, 3):
        window.patches.publish(event(n))
    log.model.flush()
    assert len(table(window)) == 1
    assert "paused, 2 waiting" in log.status.text()
    QTest.mouseClick(log.pause_button, Qt.MouseButton.LeftButton)
    assert [e.version for e in log.visible_events()] == [1, 2, 3]
    QTest.mouseClick(log.clear_button, Qt.MouseButton.LeftButton)
    assert table(window) == [] and log.model.log.total == 0


def test_the_view_follows_the_newest_row_unless_scrolled_up(qtbot):
    window = make_window(qtbot)
    log = window.patch_log
    log.model.capacity = 500
    scroll = log.view.verticalScrollBar()

    def burst(start: int, count: int = 100) -> None:
        for n in range(start, start + count):
            window.patches.publish(event(n))
        log.model.flush()

    burst(0)
    qtbot.waitUntil(lambda: scroll.maximum() > 0 and scroll.value() == scroll.maximum())
    burst(100)

    def laid_out() -> bool:
        # Read the viewport each time: the window may still be settling its docks' heights.
        visible_rows = log.view.viewport().height() // log.view.rowHeight(0)
        return scroll.maximum() == 200 - visible_rows

    qtbot.waitUntil(laid_out)
    assert scroll.value() == scroll.maximum() and log.following

    scroll.setValue(150)  # the user scrolls up to row 150
    assert not log.following
    top = log.view.rowAt(0)
    watched = log.model.event_at(top).version
    burst(200)
    qtbot.waitUntil(lambda: log.model.rowCount() == 300)
    assert scroll.value() == 150 and log.view.rowAt(0) == top  # stays put
    # Full ring: 100 old rows leave at the top; the rows on screen stay on screen.
    burst(300, 300)
    assert log.model.rowCount() == 500 and scroll.value() == 50
    assert log.model.event_at(log.view.rowAt(0)).version == watched
    scroll.setValue(scroll.maximum())
    assert log.following


# -- details and history -----------------------------------------------------------------


def test_details_and_history_show_what_a_change_did(qtbot, qrun, tmp_path):
    window = make_window(qtbot)
    log = window.patch_log

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            other = service_for(server, sdk_retries=False)
            await other.create_device("valve")
            await window.session.use("Local hub", service_for(server, sdk_retries=False))
            await select_in_tree(window, "valve")
            await until(lambda: window.history.versions("valve"), what="baseline")
            for position in ("half", "open"):
                await other.patch_twin(
                    "valve", None, {"properties": {"desired": {"position": position}}}, None
                )
                await until(
                    lambda position=position: any(
                        e.body.get("position") == position for e in log.visible_events()
                    ),
                    what=f"{position} observed",
                )
            await finish(window, other)

    qrun(scenario(), timeout=60)
    assert len(window.history.versions("valve")) == 3

    # Double-click the second observed row: the patch, and the twin diff it made.
    log.model.flush()
    row = len(log.visible_events()) - 1
    index = log.model.index(row, PATCH)
    log.view.scrollTo(index)
    rect = log.view.visualRect(index)
    QTest.mouseClick(log.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(log.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    details = log._details
    assert details is not None and details.isVisible() and not details.isModal()
    assert json.loads(details.patch_text.toPlainText()) == {"position": "open"}
    assert '-      "position": "half"' in details.diff.diff_lines
    assert '+      "position": "open"' in details.diff.diff_lines
    assert "before and after" in details.diff_note.text()
    # Enter on the first row follows the selection into the same dialog.
    log.view.setCurrentIndex(log.model.index(0, 0))
    QTest.keyClick(log.view, Qt.Key.Key_Return)
    assert json.loads(details.patch_text.toPlainText()) == {"position": "half"}

    # The history dialog: two version pickers and a coloured diff.
    window.tree_pane.view.setFocus()
    window.patch_log_actions["history"].trigger()
    (dialog,) = [w for w in QApplication.topLevelWidgets() if w.objectName() == "twinHistory"]
    assert dialog.identity == "valve" and dialog.from_box.count() == 3
    assert "3 versions" in dialog.count.text()
    dialog.select_versions(1, 3)
    lines = dialog.diff.diff_lines
    assert lines[0].startswith("--- #1 etag") and lines[1].startswith("+++ #3 etag")
    assert '+      "position": "open"' in lines
    assert not any("$metadata" in line for line in lines)
    dialog.metadata.setChecked(True)
    assert any("$metadata" in line for line in dialog.diff.diff_lines)
    dialog.side_by_side.setChecked(True)
    assert dialog.diff.currentIndex() == 1
    left, right = dialog.diff.left.toPlainText(), dialog.diff.right.toPlainText()
    assert '"position": "open"' in right and '"position": "open"' not in left
    assert left.count("\n") == right.count("\n")  # rows line up
    dialog.select_versions(2, 2)
    dialog.side_by_side.setChecked(False)
    assert dialog.diff.diff_lines == []
    assert dialog.diff.unified.toPlainText() == "No difference."
    dialog.reject()


def test_details_of_a_twin_never_watched_say_so(qtbot):
    window = make_window(qtbot)
    window.patches.publish(event(1, device_id="unseen"))
    window.patch_log.model.flush()
    details = window.patch_log.show_details(0)
    assert "was not watched" in details.diff_note.text()
    assert not details.history_button.isEnabled()


# -- watching: menus, backoff --------------------------------------------------------------


def test_pin_and_interval_actions(qtbot, qrun, tmp_path):
    window = make_window(qtbot)
    watcher = window.watch.watcher

    async def scenario() -> None:
        async with running_hub(tmp_path / "hub") as server:
            service = service_for(server, sdk_retries=False)
            for name in ("a", "b"):
                await service.create_device(name)
            await window.session.use("Local hub", service)
            await select_in_tree(window, "a")
            assert watcher.watched() == ["a"]
            assert window.watch.pin.isEnabled() and not window.watch.pin.isChecked()
            window.watch.pin.trigger()
            await select_in_tree(window, "b")
            assert watcher.watched() == ["a", "b"] and watcher.pinned == ["a"]
            await until(lambda: "Watching 2 twins" in window.patch_log.watch_status.text())
            window.watch.watch_selected.setChecked(False)
            assert watcher.watched() == ["a"]
            window.watch.unpin_all.trigger()
            assert watcher.watched() == []
            await finish(window)

    qrun(scenario(), timeout=60)
    window.watch.interval_actions[5.0].trigger()
    assert watcher.interval == 5.0
    assert window.watch.interval_actions[5.0].isChecked()
    assert saved_interval() == 5.0  # kept for the next run


@pytest.mark.slow  # a hub process stopped and started again, and the SDK's own retries
def test_watching_backs_off_while_the_hub_process_is_down(qtbot, qrun, local_hub):
    window = make_window(qtbot)
    status = window.patch_log.watch_status
    watcher = window.watch.watcher
    watcher.max_backoff = 1.0

    async def scenario() -> None:
        service = service_for(local_hub)
        await service.create_device("d1")
        await window.session.use("Local hub", service)
        await select_in_tree(window, "d1")
        await until(lambda: status.text() == "Watching d1 every 0.2 s", what="watching")

        await asyncio.to_thread(local_hub.stop)
        await until(
            lambda: status.text().startswith("Hub unreachable — retrying in"),
            within=60,
            what="the backoff shown",
        )
        assert watcher.status("d1").failures >= 1

        local_hub.extra_args = ["--rest-port", str(local_hub.rest_port)]  # same address
        await asyncio.to_thread(local_hub.start)
        await until(lambda: status.text() == "Watching d1 every 0.2 s", within=60, what="back")
        other = service_for(local_hub)
        try:
            await other.patch_twin("d1", None, {"tags": {"back": True}}, None)
            await until(lambda: rows_of(window, Direction.OBSERVED), what="observed again")
        finally:
            await finish(window, other)

    qrun(scenario(), timeout=120)
    assert rows_of(window, Direction.OBSERVED)[0].body == {"back": True}


def test_capacity_menu_trims_and_is_kept(qtbot):
    window = make_window(qtbot)
    assert window.patch_log.watch_status.text() == "Not watching any twin"
    for n in range(2000):
        window.patches.publish(event(n))
    window.patch_log.model.flush()
    window.findChild(QAction, "logCapacity1000").trigger()
    assert window.patch_log.model.rowCount() == 1000
    assert window.patch_log.model.event_at(0).version == 1000
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.patch_log.model.capacity == 1000
    assert again.findChild(QAction, "logCapacity1000").isChecked()
