"""``sdk.call`` and its timeout: a cancel is never lost, a late SDK result is never fatal."""

from __future__ import annotations

import asyncio

import pytest

from twin_explorer.simulator import sdk
from twin_explorer.simulator.errors import TimedOut


async def test_a_cancel_that_meets_the_result_still_cancels() -> None:
    """Python 3.11's ``wait_for`` returns the result and drops the cancel when both land in
    the same loop step; a module's close() then waited forever on its worker."""
    loop = asyncio.get_running_loop()
    operation = loop.create_future()
    caller = asyncio.ensure_future(sdk.call(operation, 10, "a reported patch"))
    await asyncio.sleep(0)  # the caller now waits on the operation
    operation.set_result("answered")  # the SDK's answer arrives...
    caller.cancel()  # ...in the same loop step as close() cancels the caller
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_timeout_leaves_the_operation_running() -> None:
    loop = asyncio.get_running_loop()
    operation = loop.create_future()
    with pytest.raises(TimedOut, match=r"did not answer a twin request within 0\.05 s"):
        await sdk.call(operation, 0.05, "a twin request")
    assert not operation.cancelled()
    operation.set_result("late")  # the SDK resolves it later, from its own thread


async def test_the_result_comes_back() -> None:
    loop = asyncio.get_running_loop()
    operation = loop.create_future()
    loop.call_soon(operation.set_result, {"$version": 3})
    assert await sdk.call(operation, 10, "a twin request") == {"$version": 3}
