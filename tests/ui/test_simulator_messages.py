"""A simulated device's Messages tab against a real local hub: C2D messages the service
sends appear as rows, the selected one shows in full, and Complete / Reject / Abandon
(enabled only while it is pending) settle it at the hub; the mode switches to MQTT."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTreeWidgetItem

from tests.c2d_service import ServiceC2D
from tests.hubfixtures import service_for
from tests.ui.conftest import until
from tests.ui.hubwindow import open_window
from twin_explorer.service.local_hub import LocalHubInfo
from twin_explorer.simulator import Status
from twin_explorer.ui.panes.simulators import SimulatorPanel
from twin_explorer.ui.panes.simulators.messages_tab import (
    BODY,
    CONTENT,
    MESSAGE_ID,
    PROPERTIES,
    STATE,
    MessagesTab,
    body_text,
    hex_dump,
    preview,
)


def _row(tab: MessagesTab, message_id: str) -> QTreeWidgetItem | None:
    found = tab.list.findItems(message_id, Qt.MatchFlag.MatchExactly, MESSAGE_ID)
    return found[0] if found else None


def _click(tab: MessagesTab, item: QTreeWidgetItem) -> None:
    rect = tab.list.visualItemRect(item)
    QTest.mouseClick(tab.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _buttons(tab: MessagesTab) -> tuple[bool, bool, bool]:
    return (tab.complete.isEnabled(), tab.reject.isEnabled(), tab.abandon.isEnabled())


def test_messages_are_listed_shown_and_settled_from_the_tab(qtbot, qrun, local_hub):
    window = open_window(qtbot)

    async def scenario() -> None:
        service = service_for(local_hub)
        window.session.local_info = LocalHubInfo.from_json(local_hub.info)
        await window.session.use("Local hub", service)
        identity = await service.create_device("ui-c2d")
        panel: SimulatorPanel = await window.simulators.open_module(
            service.connection_string(identity), window.simulators.local_transport()
        )
        assert window.simulators.tabs.tabText(window.simulators.tabs.indexOf(panel)) == (
            "ui-c2d (device)"
        )
        assert panel.module.status is Status.CONNECTED
        tab = panel.messages
        assert tab is not None
        panel.tabs.setCurrentWidget(tab)
        assert tab.mode.currentText() == "Settle messages by hand (HTTPS)"
        assert "polls the hub's HTTPS endpoint" in tab.mode.toolTip()
        assert _buttons(tab) == (False, False, False)  # nothing selected

        sender = await ServiceC2D.open(
            local_hub.info["amqp_port"], local_hub.ca_cert, local_hub.service_connection_string
        )
        try:
            body = json.dumps({"led": "on", "level": 3}).encode()
            await sender.send(
                "ui-c2d",
                body,
                message_id="ui-1",
                properties={"room": "kitchen", "by": "test"},
                content_type="application/json",
                ack="full",
            )
            await until(lambda: _row(tab, "ui-1") is not None, 20, "the message row")
            row = _row(tab, "ui-1")
            assert row.text(BODY) == '{"led":"on","level":3}'
            assert row.text(CONTENT) == "application/json"
            assert row.text(PROPERTIES) == "2 properties"
            assert row.text(STATE).startswith("pending (lock ")
            assert tab.counts.text() == "1 received · 1 pending"

            _click(tab, row)
            shown = tab.details.toPlainText()
            assert '"led": "on"' in shown  # pretty-printed
            assert f"Body (JSON, {len(body)} bytes)" in shown
            assert "  room: kitchen" in shown and "  messageId: ui-1" in shown
            assert "Locked until:" in shown
            assert _buttons(tab) == (True, True, True)

            tab.reject.click()
            await until(lambda: row.text(STATE) == "rejected", 15, "rejected")
            assert _buttons(tab) == (False, False, False)
            assert (await _record(sender, "ui-1"))["statusCode"] == "Rejected"

            await sender.send("ui-c2d", b"\x00\xffraw", message_id="ui-2")
            await until(lambda: _row(tab, "ui-2") is not None, 20, "the second row")
            row2 = _row(tab, "ui-2")
            _click(tab, row2)
            assert "Body (hex, 5 bytes)" in tab.details.toPlainText()
            assert "00 ff 72 61 77" in tab.details.toPlainText()
            tab.abandon.click()
            await until(
                lambda: "Earlier deliveries: 1" in tab.details.toPlainText(), 15, "redelivered"
            )
            assert row2.text(STATE).startswith("pending")
            assert tab.list.topLevelItemCount() == 2  # the same row, not a new one
            tab.complete.click()
            await until(lambda: row2.text(STATE) == "completed", 15, "completed")

            # On arrival: MQTT completes the next message itself; nothing to settle.
            tab.mode.setCurrentIndex(1)
            await until(lambda: "MQTT completes" in tab.receiving.text(), 15, "the mode")
            await sender.send("ui-c2d", b"quick", message_id="ui-3")
            await until(lambda: _row(tab, "ui-3") is not None, 20, "the MQTT row")
            _click(tab, _row(tab, "ui-3"))
            assert _row(tab, "ui-3").text(STATE) == "completed on arrival"
            assert _buttons(tab) == (False, False, False)
        finally:
            await sender.close()
        await window.shutdown()

    qrun(scenario(), timeout=120)


async def _record(sender: ServiceC2D, message_id: str) -> dict:
    while True:
        for record in await sender.feedback():
            if record["originalMessageId"] == message_id:
                return record


def test_bodies_show_as_pretty_json_text_or_hex():
    assert body_text(b'{"a":[1,2]}') == ("JSON", '{\n  "a": [\n    1,\n    2\n  ]\n}')
    assert body_text("grüße".encode()) == ("text", "grüße")
    assert body_text(b"\x00\x01")[0] == "hex"
    assert hex_dump(b"AB\x00") == "00000000  41 42 00" + " " * 39 + "  AB."
    assert preview(b"x" * 200).endswith("…") and len(preview(b"x" * 200)) == 80
    assert preview(b'{ "a" : 1 }') == '{"a":1}'
