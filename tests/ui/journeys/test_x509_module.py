"""Modules with certificates the app makes: create one (self-signed, or issued from the
app's test CA), simulate it, see it connected, change its desired properties and see
them echoed, and look at its certificate. The key lives in the keyring only."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt

from tests.ui.conftest import until
from tests.ui.journeys.test_demo import _found
from twin_explorer.connection import certificates as certs
from twin_explorer.service.identity_certificates import IdentityCertificates

DEVICE = "myFirstDevice"
GENERATE = "X.509 self-signed: generate a certificate for me"
TEST_CA = "X.509 CA-signed: issue from this app's test CA"


async def create_and_simulate(person, module: str, option: str, auth_type: str):
    """New Module… with ``option``, then Module › Simulate until it is connected; the
    simulator pane."""
    tree = person.window.tree_view
    person.click_row(tree, DEVICE)
    person.menu("Module", "New Module…")
    await until(lambda: _found(person.window_titled, "New Module"), 5, "the dialog")
    dialog = person.window_titled("New Module")
    person.type_into("module id", module)
    person.click(option, within=dialog)
    person.click("Create", within=dialog)
    await until(lambda: not dialog.isVisible(), 20, "the module created")

    person.click_row(tree, DEVICE)
    person.press(Qt.Key.Key_Right, to=tree)
    await person.wait_to_see(module)
    person.click_row(tree, module)
    await person.wait_to_see(f'"authenticationType": "{auth_type}"')
    # The toolbar's Simulate follows the selection: wait for it as a person would.
    await until(lambda: person.button("Simulate").isEnabled(), 10, "Simulate enabled")
    person.menu("Module", "Simulate")
    await until(lambda: _found(person.pane, "Simulated Modules"), 15, "the simulator pane")
    sims = person.pane("Simulated Modules")
    await until(lambda: person.sees("Connected", within=sims), 30, "the module connected")
    assert person.sees(f"{DEVICE}/{module}", within=sims)
    return sims


async def certificate_shows(person, text: str, *more: str) -> None:
    person.menu("Module", "Certificate…")
    await until(lambda: _found(person.window_titled, "Certificate of"), 10, "the dialog")
    details = person.window_titled("Certificate of")
    await until(lambda: person.sees(text, within=details), 10, repr(text))
    assert all(person.sees(item, within=details) for item in more)
    assert any(t.startswith("expires ") for t in person.texts(details))
    person.click("Close", within=details)


async def stop_simulating(person, sims, module: str) -> None:
    """Stop & Close the module's panel; the tree then shows it disconnected."""
    person.click("Stop && Close", within=sims)
    row = person.row(person.window.tree_view, module)
    await until(
        lambda: row.siblingAtColumn(2).data() == "Disconnected", 20, f"{module} disconnected"
    )


def no_errors(caplog) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def test_create_and_simulate_a_module_with_a_generated_certificate(
    person, qrun, caplog, secret_service_keyring, app_home
):
    caplog.set_level(logging.WARNING)

    async def journey():
        sims = await create_and_simulate(person, "certModule", GENERATE, "selfSigned")
        person.type_into("Editable", '{"tags": {}, "properties": {"desired": {"mode": "eco"}}}')
        await person.wait_to_see("unsaved changes")
        person.press("Ctrl+S")
        await until(lambda: person.sees('(echo) sent  {"mode":"eco"}', within=sims), 20, "the echo")
        await certificate_shows(person, f"CN={DEVICE}/certModule")
        await stop_simulating(person, sims, "certModule")

    qrun(journey(), timeout=120)
    no_errors(caplog)
    # The key is in the keyring, and in no file of the app's home (logs included).
    issued = IdentityCertificates().load("localhost", DEVICE, "certModule")
    assert issued is not None
    assert issued.cert.subject.rfc4514_string() == f"CN={DEVICE}/certModule"
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

    async def journey():
        sims = await create_and_simulate(person, "caModule", TEST_CA, "certificateAuthority")
        await certificate_shows(person, "CN=Twin Explorer Test CA", "the portal steps")
        await stop_simulating(person, sims, "caModule")

    qrun(journey(), timeout=120)
    no_errors(caplog)
