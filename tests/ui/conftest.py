"""GUI test harness: the real widgets on a real qasync loop.

SDK and service code calls ``asyncio.get_running_loop()``, so a test runs its scenario
*inside* the qasync loop: ``qrun(scenario())``. Conditions are awaited with ``until``,
which re-checks after every turn of the loop and fails with a message at its deadline.

There is one qasync loop for the whole session, as in the app: a loop per test leaves
closed loops (and their Qt timer objects) behind while SDK threads may still post to
them. Each test's windows are shut down, and its leftover tasks cancelled, inside the
loop before the next test starts.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import qasync

from twin_explorer.ui.common.ui_thread_gc import collect_on_ui_thread


def _task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        if not task.done():
            task.print_stack(limit=12, file=out)
    return out.getvalue()


def _run_until(loop: asyncio.AbstractEventLoop, task: asyncio.Future[Any], within: float) -> None:
    """Run the loop until ``task`` is done or ``within`` seconds passed.

    Plain callbacks stop it, never a task: a task's step that comes due while another
    task's step runs Qt's event loop (QTest does, for some input) is refused by asyncio
    ("Cannot enter into task") and never runs again, so a waiting task could wait for
    ever; a callback runs wherever Qt calls it."""
    if task.done():
        return
    armed = True

    def stop(*_: object) -> None:
        if armed:  # a late call must not stop the next run
            loop.stop()

    task.add_done_callback(stop)
    timer = loop.call_later(within, stop)
    try:
        loop.run_forever()
    finally:
        armed = False
        timer.cancel()
        task.remove_done_callback(stop)


def finish(loop: asyncio.AbstractEventLoop, awaitable: Any, within: float, what: str) -> Any:
    """Run ``awaitable`` on the session loop for at most ``within`` seconds.

    Never waits for longer: ``asyncio.wait_for`` waits on after its timeout until the
    cancelled task has ended, so a task that does not end hangs the run. Here the test
    fails, naming what hung and where every unfinished task stood, or which task's step
    was refused while it ran."""
    task = asyncio.ensure_future(awaitable, loop=loop)
    _run_until(loop, task, within)
    refused = REFUSED_STEPS.copy()
    REFUSED_STEPS.clear()
    if refused:
        if not task.done():
            task.cancel()
        raise AssertionError(
            "a task's step came due while another task ran Qt's event loop (a nested loop "
            "inside a scenario or the app), and asyncio refused it: " + "; ".join(refused)
        )
    if task.done():
        return task.result()
    stacks = _task_stacks(loop)
    task.cancel()
    _run_until(loop, task, 5)
    raise TimeoutError(f"{what} did not finish within {within}s; unfinished tasks:\n{stacks}")


REFUSED_STEPS: list[str] = []


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    error = context.get("exception")
    if isinstance(error, RuntimeError) and "Cannot enter into task" in str(error):
        REFUSED_STEPS.append(str(error))
    loop.default_exception_handler(context)


class SessionLoop(qasync.QEventLoop):
    """Stays asyncio's running loop for the whole of a GUI test (``qloop``), as the app's
    loop is for the app's whole life: qasync (after each run), pytest-qt (in teardown) and
    waitExposed process Qt events outside ``run_forever``, and a task stepped there must
    still find its loop (else ``asyncio.sleep`` raises "no running event loop" in hub
    tasks). Between GUI tests no loop is running, so asyncio tests may run theirs."""

    def run_forever(self) -> Any:
        running = asyncio.events._get_running_loop()
        try:
            return super().run_forever()
        finally:
            asyncio.events._set_running_loop(running)


@pytest.fixture(scope="session")
def qasync_loop(qapp):
    collector = collect_on_ui_thread(qapp)  # as the app does: see ui_thread_gc
    loop = SessionLoop(qapp, already_running=False)
    loop.set_exception_handler(_exception_handler)
    asyncio.set_event_loop(loop)
    yield loop
    collector.stop()
    # Closing shuts down the loop's default executor (the SDK runs its blocking calls
    # there): no QThread may outlive the application.
    loop.close()
    asyncio.set_event_loop(None)


async def shutdown_window(window) -> None:
    service = window.session.service
    await window.shutdown()
    if service is not None:
        await service.aclose()


@pytest.fixture
def qloop(qasync_loop):
    asyncio.set_event_loop(qasync_loop)
    asyncio.events._set_running_loop(qasync_loop)
    yield qasync_loop
    try:
        _stop_the_test(qasync_loop)
    finally:
        asyncio.events._set_running_loop(None)


def _stop_the_test(qasync_loop: SessionLoop) -> None:
    from tests.ui.hubwindow import OPEN_WINDOWS

    # Windows first: their services wait for worker threads while the loop still runs.
    while OPEN_WINDOWS:
        finish(qasync_loop, shutdown_window(OPEN_WINDOWS.pop()), 60, "closing the window")
    pending = [t for t in asyncio.all_tasks(qasync_loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        gathered = asyncio.gather(*pending, return_exceptions=True)
        finish(qasync_loop, gathered, 30, "cancelling the test's leftover tasks")


@pytest.fixture
def qrun(qloop) -> Callable[..., Any]:
    def run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return finish(qloop, coro, timeout, "the scenario")

    return run


async def until(predicate: Callable[[], object], within: float = 15.0, what: str = "") -> None:
    """Wait for ``predicate()`` to hold, letting the loop (and Qt) run in between."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)
