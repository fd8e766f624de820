"""Owning the coroutines a widget starts.

A widget that starts async work owns it: ``Tasks.spawn`` keeps a reference (asyncio only
keeps weak ones), reports failures through one callback instead of "Task exception was
never retrieved", and ``cancel_all`` ends everything when the widget goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtWidgets import QDialog, QWidget

log = logging.getLogger(__name__)


class Tasks:
    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_error = on_error

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        on_error: Callable[[BaseException], None] | None = None,
        name: str | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        handler = on_error or self._on_error

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if finished.cancelled():
                return
            exc = finished.exception()
            if exc is None:
                return
            if handler is not None:
                handler(exc)
            else:
                log.error("background task failed", exc_info=exc)

        task.add_done_callback(done)
        return task

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def cancel(self) -> None:
        """Ask every task to stop, without waiting (for widgets closing synchronously)."""
        for task in list(self._tasks):
            task.cancel()

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


class AsyncDialog(QDialog):
    """A dialog that owns its background work: closing it cancels what is still running,
    so a late answer never lands in a dialog that is gone."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = Tasks()

    def done(self, result: int) -> None:
        self.tasks.cancel()
        super().done(result)
