"""``twin-explorer --self-test``: does this installation work, end to end?

It runs what the app runs, the way the app runs it, and prints one line per check:

1. GUI libraries: Qt loads (offscreen unless QT_QPA_PLATFORM says otherwise), the
   main window can be built, the app icon is there, the native platform plugin exists.
2. keyring: the backend for this platform is part of the installation, and whether a
   real secret store answers. A machine without one is reported as a note, not a
   failure: the app still works, with session-only connections. The check never reads,
   writes or unlocks an entry, so it never prompts for a keyring password.
3. local hub: ``twin-explorer hub`` started as a child process exactly as the app starts
   it (from a frozen build, the frozen executable itself).
4. hub service: a device and a module created through the service SDK.
5. simulated module: the module connects over MQTT with the device SDK.
6. twin round trip: a desired patch sent by the service comes back as the module's
   reported property (echo), read back through the service.

Everything happens in a temporary TWIN_EXPLORER_HOME that is removed afterwards, so the
user's connections, settings, logs and local hub are never touched. Exit status 0 only
if every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from twin_explorer import APP_NAME, __version__, paths, resources

DEVICE_ID = "selftest-device"
MODULE_ID = "selftest-module"
PROPERTY = "selfTest"
ECHO_TIMEOUT = 30.0
STEP_TIMEOUT = 120.0
KEYRING_TIMEOUT = 20.0

OK, FAIL, NOTE, SKIP = "ok", "FAIL", "note", "skip"

# The keyring backend each platform's users rely on (keyring's entry point names).
_NATIVE_KEYRING = {"linux": "SecretService", "win32": "Windows", "darwin": "macOS"}
_NATIVE_QPA = {"linux": ("xcb", "wayland"), "win32": ("windows",), "darwin": ("cocoa",)}


@dataclass
class Check:
    name: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status in (FAIL, SKIP)


class StepFailed(Exception):
    """A check failed; the message says why in plain words."""


@dataclass
class Report:
    out: TextIO
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str) -> None:
        check = Check(name, status, detail)
        self.checks.append(check)
        self.out.write(f"  {status:<5} {name:<17} {detail}\n")
        self.out.flush()

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not any(check.failed for check in self.checks)

    def summary(self) -> str:
        failed = sum(check.failed for check in self.checks)
        notes = sum(check.status == NOTE for check in self.checks)
        note_text = f", {notes} note{'s' if notes != 1 else ''}" if notes else ""
        if failed:
            return (
                f"FAILED: {failed} of {len(self.checks)} checks did not pass{note_text} "
                "(run again with -v for details)"
            )
        return f"PASSED: all {len(self.checks)} checks{note_text}"


@contextlib.contextmanager
def isolated_home() -> Iterator[Path]:
    """A throwaway TWIN_EXPLORER_HOME for this process and the hub it starts."""
    saved = {key: os.environ.get(key) for key in (paths.HOME_ENV, "PYTHONPATH")}
    # Windows cannot delete a log file still open; leaving it behind is harmless.
    with tempfile.TemporaryDirectory(
        prefix="twin-explorer-selftest-", ignore_cleanup_errors=True
    ) as tmp:
        os.environ[paths.HOME_ENV] = tmp
        if not resources.is_frozen():
            # `python -m twin_explorer hub` must import this very source tree.
            source = str(Path(__file__).resolve().parent.parent)
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [source, saved["PYTHONPATH"]]))
        try:
            yield Path(tmp)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# -- checks that need no hub --------------------------------------------------------------


def check_gui() -> str:
    """Qt and every UI module load; the main window can be built; the icon is there."""
    platform = os.environ.get("QT_QPA_PLATFORM") or "offscreen"
    from PySide6 import __version__ as qt_version
    from PySide6.QtCore import QLibraryInfo

    from twin_explorer.ui.app import create_application
    from twin_explorer.ui.main_window import MainWindow

    app = create_application(["twin-explorer", "-platform", platform])
    window = MainWindow()
    window.deleteLater()
    icon = resources.app_icon()
    if icon.isNull():
        raise StepFailed(f"the app icon is missing from {resources.root()}")
    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    found = sorted(
        name for name in _NATIVE_QPA.get(sys.platform, ()) if any(plugins.glob(f"*q{name}.*"))
    )
    if _NATIVE_QPA.get(sys.platform) and not found:
        raise StepFailed(f"no native platform plugin in {plugins}")
    sizes = len(icon.availableSizes())
    return (
        f"Qt {qt_version} on {app.platformName()}, main window built, icon in {sizes} "
        f"sizes, platform plugins: {', '.join(found) or 'n/a'}"
    )


def check_keyring() -> tuple[str, str]:
    """(status, detail): FAIL if the platform's backend is not installed; NOTE if no
    secret store answers on this machine. No entry is ever read or written."""
    from importlib.metadata import entry_points

    import keyring
    from keyring.backends import chainer, fail, null

    from twin_explorer.connection.secrets import backend_name

    native = _NATIVE_KEYRING.get(sys.platform)
    if native is not None:
        found = {ep.name: ep for ep in entry_points(group="keyring.backends")}
        if native not in found:
            return FAIL, f"the {native} keyring backend is not part of this installation"
        try:
            found[native].load()
        except Exception as exc:
            return FAIL, f"the {native} keyring backend does not load: {exc}"
    backend = _with_timeout(keyring.get_keyring, KEYRING_TIMEOUT)
    if backend is None:
        return NOTE, f"the keyring did not answer within {KEYRING_TIMEOUT:.0f} s"
    empty_chain = isinstance(backend, chainer.ChainerBackend) and not backend.backends
    if isinstance(backend, fail.Keyring | null.Keyring) or empty_chain:
        return NOTE, (
            "no system keyring answers here; saved connections need one "
            "(session-only connections still work)"
        )
    return OK, f"connection strings would be kept in {backend_name(backend)}"


def _with_timeout(fn: Callable[[], Any], timeout: float) -> Any:
    """``fn()`` on a daemon thread, or None if it takes longer than ``timeout``: a
    keyring daemon that hangs must not keep the self-test (or its exit) waiting."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, name="selftest-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if errors:
        raise errors[0]
    return result[0] if result else None


# -- checks against a local hub -----------------------------------------------------------


@dataclass
class HubRun:
    """What the hub checks share: the hub process, the service and the module."""

    data_dir: Path
    hub_args: Sequence[str] = ()
    hub: Any = None
    info: Any = None
    service: Any = None
    module_cs: str | None = None
    module: Any = None

    async def start_hub(self) -> str:
        from twin_explorer.service.local_hub import LocalHubError, LocalHubProcess

        started = time.monotonic()
        self.hub = LocalHubProcess(
            self.data_dir, demo=False, mqtt_port=0, extra_args=list(self.hub_args)
        )
        try:
            self.info = await self.hub.start()
        except LocalHubError as exc:
            raise StepFailed(str(exc)) from None
        mqtt = f"MQTT port {self.info.mqtt_port}" if self.info.mqtt_port else "no MQTT port"
        return (
            f"`twin-explorer hub` ready in {time.monotonic() - started:.1f} s "
            f"(REST port {self.info.rest_port}, {mqtt})"
        )

    async def create_identities(self) -> str:
        from twin_explorer.service.errors import ServiceError
        from twin_explorer.service.hub import HubService

        self.service = HubService(
            self.info.service_connection_string, ca_cert=self.info.ca_cert, use_env_proxies=False
        )
        try:
            await self.service.create_device(DEVICE_ID)
            module = await self.service.create_module(DEVICE_ID, MODULE_ID)
        except ServiceError as exc:
            raise StepFailed(exc.text) from None
        self.module_cs = self.service.connection_string(module)
        return f"device {DEVICE_ID} and module {MODULE_ID} created"

    async def connect_module(self) -> str:
        from twin_explorer.simulator import Behaviour, SimulatedModule, SimulatorError, Transport

        started = time.monotonic()
        try:
            transport = Transport.for_local_hub(
                self.info.ca_cert, self.info.mqtt_port, self.info.proxy_port
            )
            self.module = SimulatedModule(
                self.module_cs, transport=transport, behaviour=Behaviour.ECHO
            )
            await self.module.start()
        except SimulatorError as exc:
            raise StepFailed(exc.text) from None
        return (
            f"{DEVICE_ID}/{MODULE_ID} connected {transport.route} "
            f"in {time.monotonic() - started:.1f} s"
        )

    async def round_trip(self) -> str:
        from twin_explorer.service.errors import ServiceError
        from twin_explorer.simulator import EventKind

        token = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        echoed: asyncio.Future[str] = loop.create_future()

        def listen(event: Any) -> None:
            if echoed.done():
                return
            if event.kind is EventKind.REPORTED_SENT and event.data.get("patch", {}).get(
                PROPERTY
            ) == {"token": token}:
                echoed.set_result("sent")
            elif event.kind is EventKind.REPORT_FAILED:
                echoed.set_exception(StepFailed(f"the reported patch failed: {event.data}"))

        unsubscribe = self.module.subscribe(listen)
        started = time.monotonic()
        try:
            patch = {"properties": {"desired": {PROPERTY: {"token": token}}}}
            twin = await self.service.patch_twin(DEVICE_ID, MODULE_ID, patch, None)
            version = twin.desired.get("$version")
            try:
                async with asyncio.timeout(ECHO_TIMEOUT):
                    await echoed
            except TimeoutError:
                raise StepFailed(
                    f"the module did not echo the desired patch within {ECHO_TIMEOUT:.0f} s"
                ) from None
            reported = (await self.service.get_twin(DEVICE_ID, MODULE_ID)).reported
        except ServiceError as exc:
            raise StepFailed(exc.text) from None
        finally:
            unsubscribe()
        if reported.get(PROPERTY) != {"token": token}:
            raise StepFailed(f"the hub's reported {PROPERTY} is {reported.get(PROPERTY)!r}")
        return (
            f"desired {PROPERTY} (desired $version {version}) echoed into reported in "
            f"{time.monotonic() - started:.2f} s"
        )

    async def aclose(self) -> None:
        if self.module is not None:
            await self.module.close()
        if self.service is not None:
            await self.service.aclose()
        if self.hub is not None:
            await self.hub.stop()


async def _hub_checks(report: Report, data_dir: Path, hub_args: Sequence[str]) -> None:
    run = HubRun(data_dir, hub_args)
    steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("local hub", run.start_hub),
        ("hub service", run.create_identities),
        ("simulated module", run.connect_module),
        ("twin round trip", run.round_trip),
    ]
    try:
        failed = False
        for name, step in steps:
            if failed:
                report.add(name, SKIP, "not run: an earlier check failed")
                continue
            try:
                async with asyncio.timeout(STEP_TIMEOUT):
                    detail = await step()
                report.add(name, OK, detail)
            except StepFailed as exc:
                report.add(name, FAIL, str(exc))
                failed = True
            except TimeoutError:
                report.add(name, FAIL, f"did not finish within {STEP_TIMEOUT:.0f} s")
                failed = True
    finally:
        await run.aclose()


# -- the command --------------------------------------------------------------------------


def run(
    *,
    out: TextIO | None = None,
    verbose: bool = False,
    hub_args: Sequence[str] = (),
    configure_logging: bool = True,
) -> int:
    """Run every check, print the report to ``out`` (stdout); 0 only if all passed.

    ``hub_args`` are extra ``twin-explorer hub`` arguments (tests use them to start a
    hub the checks must fail against). ``configure_logging`` sets up this process's
    logging (into the temporary home); a caller that has its own leaves it off.
    """
    # A Windows GUI executable has no stdout: the report is lost, the exit code is not
    # (twin-explorer-cli.exe is the launcher that prints it).
    out = out or sys.stdout or io.StringIO()
    kind = "frozen build" if resources.is_frozen() else "from source"
    out.write(f"{APP_NAME} {__version__} self-test ({kind}, {sys.platform})\n")
    report = Report(out)
    with isolated_home() as home:
        if configure_logging:
            from twin_explorer import logs

            logs.configure("selftest", verbose=verbose)
        try:
            report.add("GUI libraries", OK, check_gui())
        except Exception as exc:  # any import or Qt failure is the finding itself
            report.add("GUI libraries", FAIL, f"{type(exc).__name__}: {exc}")
        try:
            report.add("keyring", *check_keyring())
        except Exception as exc:
            report.add("keyring", NOTE, f"could not ask the keyring: {type(exc).__name__}")
        asyncio.run(_hub_checks(report, home / "localhub", hub_args))
    out.write(report.summary() + "\n")
    out.flush()
    return 0 if report.passed else 1
