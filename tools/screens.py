"""Screenshots of the real window in each main state, in light and in dark.

    tools/screens                      # every state, light and dark, into screens/
    tools/screens --out /tmp/s --scheme dark --only conflict about
    tools/screens --list               # the states, in order

For each colour scheme a private Xvfb starts, and the app runs on it (the xcb platform,
as on a Linux desktop) on a throwaway home, so it opens its demo local hub. A person
(``tests/ui/person.py``) then drives the window into each state through its visible
controls, and the screen is saved as ``NN-name-<scheme>.png``. Dark is the OS asking for
it the way a plain X11 session does (``GTK_THEME=Adwaita:dark``); set
``QT_QPA_PLATFORMTHEME=gtk3`` to have Qt's GTK theme supply the palette instead.

Each state has a timeout; one that fails is saved as ``NN-name-FAILED-<scheme>.png`` with
the reason printed, and the next state still runs; one that succeeds removes the FAILED
picture a previous run left for it. Adding a state: write an ``async def`` that drives the
window from wherever the previous state left it, through visible controls, and checks it
shows what the picture is for; decorate it with ``@state("name")``; the order of
definition is the order of the pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCREEN = "1600x1000x24"
WINDOW = (1400, 900)
SMALL = (800, 500)
STATE_TIMEOUT = 60.0
MODULE = ("myFirstDevice", "myFirstModule")


@dataclass
class State:
    name: str
    drive: Callable[[Screens], Awaitable[None]]
    timeout: float
    after: Callable[[Screens], None] | None  # undo what tidy() does not


STATES: list[State] = []


def state(
    name: str, timeout: float = STATE_TIMEOUT, after: Callable[[Screens], None] | None = None
):
    def register(fn: Callable[[Screens], Awaitable[None]]):
        STATES.append(State(name, fn, timeout, after))
        return fn

    return register


class Screens:
    """The window, the person at it, and the few steps several states share."""

    def __init__(self, window, person, out: Path, scheme: str) -> None:
        self.window = window
        self.person = person
        self.out = out
        self.scheme = scheme

    async def until(self, predicate, within: float = 20.0, what: str = "") -> None:
        from tests.ui.conftest import until

        await until(predicate, within, what)

    async def settled(self) -> None:
        """Let pending layout and paint reach the X server before a picture is taken."""
        # Qt paints on the loop's next turns and the X server composes what it was sent;
        # neither says when it is done.
        await asyncio.sleep(0.4)

    async def open_module(self, device: str = MODULE[0], module: str = MODULE[1]) -> None:
        """Select ``device/module`` in the tree, expanding the device as a person would."""
        from PySide6.QtCore import Qt

        tree, p = self.window.tree_view, self.person
        await p.wait_to_see(device, 60)
        p.click_row(tree, device)
        p.press(Qt.Key.Key_Right, to=tree)

        def in_tree() -> bool:
            try:
                return p.row(tree, module).isValid()
            except AssertionError:
                return False

        await self.until(in_tree, 20, f"{module} under {device} in the tree")
        p.click_row(tree, module)
        await p.wait_to_see(f'"moduleId": "{module}"')

    async def type_twin(self, change: Callable[[dict], None]) -> None:
        """Replace the editor's text with its JSON after ``change``, typed by keyboard."""
        from PySide6.QtGui import QKeySequence
        from PySide6.QtTest import QTest

        view = self.window.editor.text_view
        # The text is locked while the twin loads: keys typed then are lost.
        await self.until(lambda: not view.isReadOnly(), 10, "the twin editable")
        document = json.loads(view.toPlainText())
        change(document)
        typed = json.dumps(document)
        self.person.click_widget(view)
        QTest.keySequence(view, QKeySequence.StandardKey.SelectAll)
        QTest.keyClicks(view, typed)
        await self.until(lambda: view.toPlainText() == typed, 5, "the edit typed in the editor")

    async def simulating(self) -> QWidget:
        """The module simulated (started, or brought forward if it runs): its pane."""
        await self.open_module()
        self.person.menu("Module", "Simulate")
        await self.until(lambda: self.showing("Simulated Modules"), 15, "the simulator pane")
        pane = self.person.pane("Simulated Modules")
        await self.until(lambda: self.person.sees("Connected", within=pane), 45, "connected")
        return pane

    def showing(self, pane: str) -> bool:
        """Whether the dock ``pane`` is in front: a dock behind another's tab stays
        "visible" to Qt, moved out of the window, so what is on screen decides."""
        try:
            dock = self.person.pane(pane)
        except AssertionError:
            return False
        return not dock.visibleRegion().isEmpty()

    def dialog(self, title: str) -> QWidget | None:
        try:
            return self.person.window_titled(title)
        except AssertionError:
            return None

    async def save(self) -> None:
        """Twin → Save Twin, once the edit is checked and Save is offered."""
        await self.until(lambda: self.person.button("Save Twin").isEnabled(), 10, "Save")
        self.person.menu("Twin", "Save Twin")

    def desired(self, document: dict) -> dict:
        return document.setdefault("properties", {}).setdefault("desired", {})

    def tidy(self) -> None:
        """Back to the plain window: dialogs and menus closed, unsaved edits dropped."""
        from PySide6.QtWidgets import QApplication, QDialog, QMenu

        for widget in QApplication.topLevelWidgets():
            if widget.isVisible() and isinstance(widget, QDialog):
                widget.reject()
            elif widget.isVisible() and isinstance(widget, QMenu):
                widget.hide()
        editor = self.window.editor
        if "Reload theirs" in self.person.button_texts():  # an etag conflict is showing
            self.person.click("Reload theirs")
        if editor.discard_action.isEnabled():
            editor.discard_action.trigger()
        if self.window.size().width() < WINDOW[0]:
            self.window.resize(*WINDOW)

    def shoot(self, name: str) -> Path:
        """Save the screen area the app's visible windows cover."""
        from PySide6.QtCore import QRect
        from PySide6.QtWidgets import QApplication

        area = QRect()
        for widget in QApplication.topLevelWidgets():
            if widget.isVisible() and widget.isWindow():
                area = area.united(widget.frameGeometry())
        screen = self.window.screen()
        area = area.intersected(screen.geometry())
        picture = screen.grabWindow(0, area.x(), area.y(), area.width(), area.height())
        path = self.out / f"{name}-{self.scheme}.png"
        picture.save(str(path))
        return path

    def forget_failure(self, name: str) -> None:
        """Remove the FAILED picture of ``name`` in this scheme a previous run left."""
        (self.out / f"{name}-FAILED-{self.scheme}.png").unlink(missing_ok=True)


# -- the states, in order ----------------------------------------------------------------


@state("01-first-start", timeout=90)
async def first_start(s: Screens) -> None:
    await s.person.wait_to_see(MODULE[0], 80)


@state("02-module-twin")
async def module_twin(s: Screens) -> None:
    await s.open_module()


@state("03-simulator-connected")
async def simulator(s: Screens) -> None:
    await s.open_module()
    s.person.menu("Module", "Simulate")
    await s.person.wait_to_see("Connected", 45)


@state("04-patch-log-filtered")
async def patch_log(s: Screens) -> None:
    await s.open_module()
    stamp = int(time.time()) % 1000
    await s.type_twin(lambda d: s.desired(d).update(telemetryInterval=stamp))
    await s.save()
    log = s.window.patch_log.view
    await s.until(lambda: log.model().rowCount() >= 1, 30, "the patch log to show the save")
    s.person.tab("Patch Log")  # it shares the bottom area with the simulated modules
    await s.until(lambda: s.showing("Patch Log"), 5, "the patch log in front")
    s.person.type_into("Search patches", "telemetryInterval")
    await s.until(lambda: s.person.sees("telemetryInterval", within=log), 5, "the filtered row")


@state("05-edit-validation-error")
async def edit_error(s: Screens) -> None:
    await s.open_module()
    await s.type_twin(lambda d: s.desired(d).update({"bad key$": 1}))
    await s.person.wait_to_see("error")


@state("06-etag-conflict")
async def conflict(s: Screens) -> None:
    await s.open_module()
    # Someone else changes the twin after it was opened here.
    await s.window.session.service.patch_twin(
        *MODULE, {"properties": {"desired": {"mode": "someone else"}}}, None
    )
    await s.type_twin(lambda d: s.desired(d).update(mode="mine"))
    await s.save()
    await s.person.wait_to_see("Their change")


@state("07-method-dialog")
async def method_dialog(s: Screens) -> None:
    await s.open_module()
    s.person.menu("Module", "Invoke Direct Method")
    await s.until(lambda: s.person.sees("Invoke"), 10, "the method dialog")
    s.person.type_into("e.g. reboot", "reboot")


def clear_query(s: Screens) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QKeySequence
    from PySide6.QtTest import QTest

    field = s.person.field("Query")
    QTest.keySequence(field, QKeySequence.StandardKey.SelectAll)
    QTest.keyClick(field, Qt.Key.Key_Delete)
    QTest.keyClick(field, Qt.Key.Key_Return)
    if s.window.notice.text():
        s.person.click("Dismiss")  # the message bar's ✕


@state("08-query-error", after=clear_query)
async def query_error(s: Screens) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    field = s.person.type_into("Query", "SELEC * FROM devices")
    QTest.keyClick(field, Qt.Key.Key_Return)
    await s.person.wait_to_see("expected SELECT", 20)  # the error, where it was typed


@state("09-about")
async def about(s: Screens) -> None:
    s.person.menu("Help", "About Twin Explorer")
    await s.until(lambda: s.person.sees("About Twin Explorer"), 10, "the about box")


@state("10-small-window")
async def small_window(s: Screens) -> None:
    await s.open_module()
    s.window.resize(*SMALL)
    await s.settled()
    size = s.window.size()
    if (size.width(), size.height()) != SMALL:
        raise AssertionError(f"the window stays {size.width()}×{size.height()} (its minimum)")


@state("11-desired-vs-reported")
async def desired_vs_reported(s: Screens) -> None:
    await s.open_module("chiller-01", "controller")
    s.person.tab("Desired vs reported")
    await s.person.wait_to_see("never reported")


@state("12-diff-before-save")
async def diff_before_save(s: Screens) -> None:
    await s.open_module("chiller-01", "controller")
    await s.type_twin(lambda d: s.desired(d).update(setpoint=7.5, fan="high"))
    await s.until(lambda: s.person.button("Save Twin").isEnabled(), 10, "the edit checked")
    s.person.tab("Diff")
    await s.person.wait_to_see("changed line")


@state("13-local-hub-details")
async def local_hub_details(s: Screens) -> None:
    s.person.menu("Hub", "Local Hub Details")
    await s.until(lambda: s.dialog("Local Hub Details") is not None, 10, "the details dialog")


@state("14-keyboard-shortcuts")
async def keyboard_shortcuts(s: Screens) -> None:
    s.person.menu("Help", "Keyboard Shortcuts")
    await s.until(lambda: s.dialog("Keyboard Shortcuts") is not None, 10, "the shortcuts")
    await s.person.wait_to_see("Save Twin")


@state("15-simulator-telemetry")
async def simulator_telemetry(s: Screens) -> None:
    pane = await s.simulating()
    s.person.tab("Telemetry", within=pane)
    s.person.click("Send One", within=pane)
    await s.until(lambda: s.person.sees('"count": ', within=pane), 15, "the message listed")


@state("16-method-answered")
async def method_answered(s: Screens) -> None:
    pane = await s.simulating()
    s.person.tab("Methods", within=pane)
    s.person.type_into("method name", "reboot")
    s.person.type_into("answer payload", '{"ok": true}')
    s.person.click("Set", within=pane)
    await s.until(lambda: s.person.sees('reboot: 200 {"ok":true}', within=pane), 10, "the rule")
    s.person.menu("Module", "Invoke Direct Method")
    await s.until(lambda: s.dialog("Direct Method") is not None, 10, "the method dialog")
    dialog = s.person.window_titled("Direct Method")
    s.person.type_into("Method name", "reboot")
    s.person.click("Invoke", within=dialog)
    await s.until(lambda: s.person.sees("Status 200", within=dialog), 20, "the answer")


@state("17-add-connection")
async def add_connection(s: Screens) -> None:
    s.person.menu("Hub", "Connections")
    await s.until(lambda: s.dialog("Hub Connections") is not None, 10, "the connections")
    s.person.click("Add…", within=s.person.window_titled("Hub Connections"))
    await s.until(lambda: s.dialog("Add Connection") is not None, 10, "the add dialog")


BULK_CHANGE = '{"tags": {"building": "B7"},\n"properties": {"desired": {"telemetryInterval": 15}}}'


async def bulk_preview_of_two_thermostats(s: Screens) -> QWidget:
    """Two thermostats chosen in the tree, Change Many Twins, a change, its preview."""
    p, tree = s.person, s.window.tree_view
    await p.wait_to_see("thermostat-lobby", 60)
    p.click_row(tree, "thermostat-floor3")
    p.click_row(tree, "thermostat-lobby", add=True)
    p.menu("Twin", "Change Many Twins…")
    await s.until(lambda: s.dialog("Change Many Twins") is not None, 10, "the bulk window")
    bulk = p.window_titled("Change Many Twins")
    p.type_into("Change", BULK_CHANGE)
    p.click("Preview", within=bulk)
    await p.wait_to_see("twins previewed")
    p.click_row(bulk.table, "thermostat-lobby")  # type: ignore[attr-defined]
    await p.wait_to_see('"telemetryInterval": 15')
    return bulk


@state("18-bulk-preview")
async def bulk_preview(s: Screens) -> None:
    await bulk_preview_of_two_thermostats(s)


@state("19-bulk-applied")
async def bulk_applied(s: Screens) -> None:
    bulk = await bulk_preview_of_two_thermostats(s)
    s.person.click("Apply to 2 Twins", within=bulk)
    await s.until(lambda: s.person.sees("2 applied", within=bulk), 20, "the outcomes")


@state("20-restore-version")
async def restore_version(s: Screens) -> None:
    """A saved edit, then Twin History → Restore This Version… on the version before it."""
    await s.open_module()
    history = s.window.history
    await s.until(lambda: history.versions("myFirstDevice/myFirstModule"), 10, "a version")
    before = len(history.versions("myFirstDevice/myFirstModule"))
    await s.type_twin(lambda doc: s.desired(doc).update(mode=f"eco-{s.scheme}"))
    await s.save()
    await s.until(
        lambda: len(history.versions("myFirstDevice/myFirstModule")) > before, 10, "saved"
    )
    s.person.menu("Twin", "Twin History")
    await s.until(lambda: s.dialog("Twin History") is not None, 10, "the history")
    s.person.click("Restore This Version…", within=s.person.window_titled("Twin History"))
    await s.until(lambda: s.dialog("Restore") is not None, 10, "the restore dialog")
    await s.until(
        lambda: s.person.button("Send Patch", within=s.dialog("Restore")).isEnabled(),
        10, "the patch built",
    )  # fmt: skip


@state("21-new-module-certificate")
async def new_module_certificate(s: Screens) -> None:
    await s.until(lambda: s.person.sees(MODULE[0]), 30, "the demo devices")
    s.person.click_row(s.window.tree_view, MODULE[0])
    s.person.menu("Module", "New Module…")
    await s.until(lambda: s.dialog("New Module") is not None, 10, "the new module dialog")
    dialog = s.person.window_titled("New Module")
    s.person.type_into("module id", "certModule")
    s.person.click("X.509 self-signed: generate a certificate for me", within=dialog)


@state("22-events-telemetry")
async def events_telemetry(s: Screens) -> None:
    from PySide6.QtWidgets import QTableView

    pane = await s.simulating()
    s.person.tab("Events")
    await s.until(lambda: s.showing("Events"), 5, "the events in front")
    events = s.person.pane("Events")
    s.person.click("Restart", within=events)
    await s.until(lambda: s.person.sees("Receiving new", within=events), 30, "receiving")
    s.person.tab("Simulated Modules")
    s.person.tab("Telemetry", within=pane)
    s.person.click("Send One", within=pane)
    s.person.tab("Events")
    view = next(v for v in events.findChildren(QTableView) if v.objectName() == "eventsView")
    model = view.model()

    def telemetry_row() -> int:
        rows = [r for r in range(model.rowCount()) if model.index(r, 1).data() == "Telemetry"]
        return rows[-1] if rows else -1

    await s.until(lambda: telemetry_row() >= 0, 20, "telemetry in Events")
    view.selectRow(telemetry_row())
    await s.until(lambda: s.person.sees("System properties", within=events), 5, "the details")


@state("23-events-twin-changes-only")
async def events_twin_only(s: Screens) -> None:
    from PySide6.QtWidgets import QTableView

    s.person.tab("Events")
    await s.until(lambda: s.showing("Events"), 5, "the events in front")
    events = s.person.pane("Events")
    s.person.click("Telemetry", within=events)
    s.person.type_into("Device or device/module", "myFirst*")
    view = events.findChild(QTableView)
    await s.until(lambda: not s.person.sees("Telemetry", within=view), 5, "no telemetry rows")


@state("24-events-chart")
async def events_chart(s: Screens) -> None:
    """Telemetry plotted: the simulated module's ``count`` over a few sends."""
    await events_telemetry(s)
    events = s.person.pane("Events")
    s.person.type_into("Plot field", "count")
    s.person.click("Plot", within=events)
    plots = s.window.events.widget.plots

    def points() -> int:
        return sum(len(one.values) for one in plots)

    for _ in range(3):
        before = points()
        s.person.tab("Simulated Modules")
        s.person.click("Send One", within=s.person.pane("Simulated Modules"))
        s.person.tab("Events")
        await s.until(lambda n=before: points() > n, 15, "one more point")


@state("25-patch-log-twin-changes-live")
async def patch_log_live(s: Screens) -> None:
    """Another service client changes a twin; the patch log shows it with its source."""
    from twin_explorer.service.hub import HubService

    s.person.tab("Events")
    events = s.person.pane("Events")
    await s.until(lambda: s.person.sees("Receiving new", within=events), 30, "receiving")
    s.person.tab("Patch Log")
    info = s.window.session.local_info
    other = HubService(info.service_connection_string, ca_cert=info.ca_cert, use_env_proxies=False)
    try:
        for value in (1, 2, 3):
            patch = {"properties": {"desired": {"rate": value}}}
            await other.patch_twin("myFirstDevice", None, patch, "*")
    finally:
        await other.aclose()
    log = s.person.pane("Patch Log")
    await s.until(lambda: s.person.sees('"rate":3', within=log), 15, "the changes")


@state("26-simulated-device-message", timeout=120)
async def simulated_device_message(s: Screens) -> None:
    """A simulated device's Messages tab: a message sent from Send Message to Device…,
    pending, selected; the sender waits for feedback."""
    from PySide6.QtWidgets import QTreeWidget

    p, tree = s.person, s.window.tree_view
    await p.wait_to_see(MODULE[0], 60)
    p.click_row(tree, MODULE[0])
    p.context_menu(tree, MODULE[0], "Simulate")
    await s.until(lambda: s.showing("Simulated Modules"), 15, "the simulator pane")
    sims = p.pane("Simulated Modules")
    await s.until(lambda: p.sees(f"{MODULE[0]} (device)", within=sims), 15, "the device tab")
    await s.until(lambda: p.sees("Connected", within=sims), 45, "connected")
    p.tab("Messages", within=sims)
    p.context_menu(tree, MODULE[0], "Send Message to Device…")
    await s.until(lambda: s.dialog(f"Send Message to Device — {MODULE[0]}") is not None, 10)
    dialog = p.window_titled(f"Send Message to Device — {MODULE[0]}")
    p.choose("Content type", "application/json")
    p.type_into("Body", '{"command": "open valve", "percent": 40}')
    await s.until(lambda: p.button("Send", within=dialog).isEnabled(), 5, "Send enabled")
    p.click("Send", within=dialog)
    await s.until(lambda: p.sees("Waiting for feedback", within=dialog), 20, "sent")
    view = next(v for v in sims.findChildren(QTreeWidget) if v.objectName() == "simMessages")
    await s.until(lambda: view.topLevelItemCount() > 0, 30, "the message in Messages")
    s.window.activateWindow()
    p.click_row(view, view.topLevelItem(0).text(0))
    await s.until(lambda: p.sees('"command": "open valve"', within=sims), 5, "its body")


@state("27-send-message-feedback", timeout=60)
async def send_message_feedback(s: Screens) -> None:
    """Complete in the device's Messages tab; Send Message to Device… lists the message
    with the device's feedback."""
    p, tree = s.person, s.window.tree_view
    sims = p.pane("Simulated Modules")
    p.click("Complete", within=sims)
    p.context_menu(tree, MODULE[0], "Send Message to Device…")
    await s.until(lambda: s.dialog(f"Send Message to Device — {MODULE[0]}") is not None, 10)
    dialog = p.window_titled(f"Send Message to Device — {MODULE[0]}")
    await s.until(lambda: p.sees("completed", within=dialog), 30, "the feedback")


@state("28-events-twin-query", timeout=120)
async def events_twin_query(s: Screens) -> None:
    """Events narrowed by a twin query: only the identities it matches."""
    await events_telemetry(s)
    events = s.person.pane("Events")
    s.person.type_into("Twin query", "deviceId = 'myFirstDevice'\n")
    await s.until(lambda: s.person.sees("queried", within=events), 15, "the query applied")


@state("29-events-missing-consumer-group", timeout=60)
async def events_missing_group(s: Screens) -> None:
    """A consumer group the hub does not have: the pane says how to create it."""
    s.person.tab("Events")
    await s.until(lambda: s.showing("Events"), 5, "the events in front")
    events = s.person.pane("Events")
    s.person.type_into("Group", "dashboards")
    s.person.click("Restart", within=events)
    said = "has no consumer group"
    await s.until(lambda: s.person.sees(said, within=events), 20, "the missing group said")


# -- running -------------------------------------------------------------------------------


async def run_states(s: Screens, chosen: list[State]) -> list[tuple[str, str]]:
    results = []
    for item in chosen:
        started = time.monotonic()
        try:
            async with asyncio.timeout(item.timeout):
                await item.drive(s)
                await s.settled()
            s.shoot(item.name)
            s.forget_failure(item.name)
            outcome = f"ok ({time.monotonic() - started:.1f} s)"
        except BaseException as exc:  # one state failing must not stop the rest
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{exc}"
            outcome = f"FAILED: {reason or type(exc).__name__}"
            traceback.print_exception(exc, file=sys.stderr)
            try:
                await s.settled()
                s.shoot(f"{item.name}-FAILED")
            except Exception:  # the picture is a bonus
                pass
        print(f"  {s.scheme:<5} {item.name:<28} {outcome}", flush=True)
        results.append((item.name, outcome))
        try:
            s.tidy()
            if item.after is not None:
                item.after(s)
            await s.settled()
        except Exception as exc:
            print(f"  {s.scheme:<5} (tidying after {item.name} failed: {exc})", flush=True)
    return results


def inner(args: argparse.Namespace) -> int:
    """In the Xvfb session: start the app, drive it through the chosen states."""
    import qasync

    from tests.ui.person import Person
    from twin_explorer import logs
    from twin_explorer.ui.app import create_application
    from twin_explorer.ui.main_window import MainWindow

    logs.configure("app", verbose=False)
    app = create_application(["twin-explorer"])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow()
    window.resize(*WINDOW)
    window.move(0, 0)
    window.show()
    window.open_hub()
    out = Path(args.out)
    screens = Screens(window, Person(window), out, args.scheme)
    chosen = [s for s in STATES if not args.only or any(o in s.name for o in args.only)]
    with loop:
        results = loop.run_until_complete(run_states(screens, chosen))
        window.close()
        loop.run_until_complete(window.shutdown())
    return 0 if all(outcome.startswith("ok") for _, outcome in results) else 1


def outer(args: argparse.Namespace) -> int:
    """One Xvfb and one app process per colour scheme."""
    from tests.xserver import xvfb

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    schemes = ["light", "dark"] if args.scheme == "both" else [args.scheme]
    failed = False
    for scheme in schemes:
        with (
            tempfile.TemporaryDirectory(prefix="twin-explorer-screens-") as home,
            xvfb(SCREEN) as display,
        ):
            env = {k: v for k, v in os.environ.items() if k != "GTK_THEME"}
            env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", TWIN_EXPLORER_HOME=home)
            if scheme == "dark":
                env["GTK_THEME"] = "Adwaita:dark"
            command = [sys.executable, __file__, "--inner", "--scheme", scheme, "--out", str(out)]
            command += ["--only", *args.only] if args.only else []
            try:
                code = subprocess.run(command, env=env, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                print(f"  {scheme}: gave up after {args.timeout:.0f} s", flush=True)
                code = 1
            failed |= code != 0
    print(f"pictures in {out.resolve()}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "screens"), help="folder for the PNGs")
    parser.add_argument("--scheme", choices=("light", "dark", "both"), default="both")
    parser.add_argument("--only", nargs="*", default=[], help="states whose name contains one")
    parser.add_argument("--list", action="store_true", help="list the states and exit")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per scheme")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        for item in STATES:
            print(f"{item.name}  (timeout {item.timeout:.0f} s)")
        return 0
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
