"""A module with a certificate the app makes: create it, simulate it, see it connected,
change its desired properties and see them echoed. The key lives in the keyring only."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt

from tests.ui.conftest import until
from tests.ui.journeys.test_demo import _found
from twin_explorer.connection import certificates as certs
from twin_explorer.service.identity_certificates import IdentityCertificates

MODULE = "certModule"


def test_create_and_simulate_a_module_with_a_generated_certificate(
    person, qrun, caplog, secret_service_keyring, app_home
):
    caplog.set_level(logging.WARNING)
    tree = person.window.tree_view

    async def journey():
        person.click_row(tree, "myFirstDevice")
        person.menu("Module", "New Module…")
        await until(lambda: _found(person.window_titled, "New Module"), 5, "the dialog")
        dialog = person.window_titled("New Module")
        person.type_into("module id", MODULE)
        person.click("X.509 self-signed: generate a certificate for me", within=dialog)
        person.click("Create", within=dialog)
        await until(lambda: not dialog.isVisible(), 15, "the module created")

        person.click_row(tree, "myFirstDevice")
        person.press(Qt.Key.Key_Right, to=tree)
        await person.wait_to_see(MODULE)
        person.click_row(tree, MODULE)
        await person.wait_to_see('"authenticationType": "selfSigned"')

        person.menu("Module", "Simulate")
        await until(lambda: _found(person.pane, "Simulated Modules"), 15, "the simulator pane")
        sims = person.pane("Simulated Modules")
        await until(lambda: person.sees("Connected", within=sims), 30, "the module connected")
        assert person.sees(f"myFirstDevice/{MODULE}", within=sims)

        person.type_into("Editable", '{"tags": {}, "properties": {"desired": {"mode": "eco"}}}')
        await person.wait_to_see("unsaved changes")
        person.press("Ctrl+S")
        await until(lambda: person.sees('(echo) sent  {"mode":"eco"}', within=sims), 20, "the echo")

    qrun(journey(), timeout=120)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    # The key is in the keyring, and in no file of the app's home (logs included).
    issued = IdentityCertificates().load("localhost", "myFirstDevice", MODULE)
    assert issued is not None
    assert issued.cert.subject.rfc4514_string() == f"CN=myFirstDevice/{MODULE}"
    key_body = certs.key_pem(issued.key).decode().splitlines()[1]  # a line of the key
    scalar = issued.key.private_numbers().private_value.to_bytes(32, "big")
    for path in app_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key_body.encode() not in data and scalar not in data, path


def test_a_module_issued_from_the_test_ca_connects(
    person, qrun, caplog, secret_service_keyring, app_home
):
    caplog.set_level(logging.WARNING)
    tree = person.window.tree_view

    async def journey():
        person.click_row(tree, "myFirstDevice")
        person.menu("Module", "New Module…")
        await until(lambda: _found(person.window_titled, "New Module"), 5, "the dialog")
        dialog = person.window_titled("New Module")
        person.type_into("module id", "caModule")
        person.click("X.509 CA-signed: issue from this app's test CA", within=dialog)
        person.click("Create", within=dialog)
        await until(lambda: not dialog.isVisible(), 20, "the module created")

        person.click_row(tree, "myFirstDevice")
        person.press(Qt.Key.Key_Right, to=tree)
        await person.wait_to_see("caModule")
        person.click_row(tree, "caModule")
        await person.wait_to_see('"authenticationType": "certificateAuthority"')
        person.menu("Module", "Simulate")
        await until(lambda: _found(person.pane, "Simulated Modules"), 15, "the simulator pane")
        sims = person.pane("Simulated Modules")
        await until(lambda: person.sees("Connected", within=sims), 30, "the module connected")

        person.menu("Module", "Certificate…")
        await until(lambda: _found(person.window_titled, "Certificate of"), 10, "the dialog")
        details = person.window_titled("Certificate of")
        await until(
            lambda: person.sees("CN=Twin Explorer Test CA", within=details), 10, "its issuer"
        )
        assert person.sees("the portal steps", within=details)
        person.click("Close", within=details)

    qrun(journey(), timeout=120)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
