"""Group commit: acknowledge what the event log took only once it is written.

IoT Hub may deliver a QoS 1 message twice, never drop one it acknowledged. So a transport
acknowledges telemetry (MQTT's PUBACK, later HTTP's 204) from :meth:`GroupCommit.after`,
which calls it back once the event log has committed everything taken so far. The first
caller in a loop turn schedules one commit for the next turn: every message that arrived
in between goes into that one SQLite transaction (no fsync: WAL with synchronous=NORMAL
survives a crash of the hub's process), and all their acknowledgements follow it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from twin_explorer.localhub.store.event_log import EventLog

logger = logging.getLogger(__name__)


class GroupCommit:
    """One pending commit of the event log at a time, run on the next loop turn."""

    def __init__(self, event_log: EventLog) -> None:
        self._log = event_log
        self._scheduled = False
        self._closed = False
        self.commits = 0  # commits this ran (tests and benchmarks read it)

    def after(self, callback: Callable[[bool], None]) -> None:
        """``callback(True)`` once everything the log took so far is written (at once if
        it is); ``callback(False)`` if it could not be (the disk is full)."""
        self._log.when_committed(callback)
        if not self._log.pending or self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script using the core): write now
            self.commit()
            return
        self._scheduled = True
        loop.call_soon(self.commit)

    def commit(self) -> None:
        self._scheduled = False
        if self._closed:
            return
        self.commits += 1
        try:
            self._log.flush()
        except Exception:  # not DiskFull (the log handles that): a bug, but the hub goes on
            logger.exception("committing the event log failed")

    def close(self) -> None:
        """The core is closing: it writes what is pending itself."""
        self._closed = True
