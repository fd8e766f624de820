"""Twin changes made elsewhere, live in the patch log: another service client changes a
twin three times a second apart; the patch log shows all three with where they came
from, without the person selecting or pinning the twin (no polling: the hub's events)."""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtWidgets import QTableView

from tests.ui.conftest import until
from twin_explorer.service.hub import HubService

DEVICE = "myFirstDevice"


def test_another_clients_twin_changes_show_in_the_patch_log(person, qrun, caplog):
    caplog.set_level(logging.WARNING)
    info = person.window.model.session.local_info  # the demo hub's owner string, as a CLI has
    other = HubService(info.service_connection_string, ca_cert=info.ca_cert, use_env_proxies=False)

    async def journey():
        person.tab("Events")
        events = person.pane("Events")
        await until(lambda: person.sees("Receiving new events", within=events), 30, "receiving")
        person.tab("Patch Log")
        log = person.pane("Patch Log")

        for value in (101, 102, 103):
            await other.patch_twin(DEVICE, None, {"properties": {"desired": {"rate": value}}}, "*")
            await asyncio.sleep(1.0)  # a second apart, as the case has it

        def shown(value: int) -> bool:
            return any(f'"rate":{value}' in text.replace(" ", "") for text in person.texts(log))

        await until(lambda: all(shown(v) for v in (101, 102, 103)), 15, "all three changes")
        view = log.findChild(QTableView)
        model = view.model()
        rows = [
            [model.index(r, c).data() for c in range(model.columnCount())]
            for r in range(model.rowCount())
        ]
        changes = [row for row in rows if '"rate":10' in row[-1]]
        assert len(changes) == 3, rows  # each change once
        assert person.sees("observed · another client", within=log)

    try:
        qrun(journey(), timeout=90)
    finally:
        qrun(other.aclose(), timeout=30)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
