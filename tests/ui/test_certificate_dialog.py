"""The certificate dialog: what it shows of an X.509 identity, the expiry warning, and
exports whose key only the chosen passphrase opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.ui.conftest import until
from twin_explorer.connection import certificates as certs
from twin_explorer.connection.secrets import SessionSecretStore
from twin_explorer.service.identity_certificates import IdentityCertificates
from twin_explorer.service.models import Identity
from twin_explorer.ui.chrome.certificate_dialog import CertificateDialog

HUB = "localhost"


def _identity(issued: certs.Issued, kind: str = "selfSigned") -> Identity:
    return Identity(
        device_id="d",
        module_id="m",
        auth_type=kind,
        etag="e",
        primary_thumbprint=issued.sha1,
        secondary_thumbprint=issued.sha256,
    )


def _dialog(qtbot, qrun, issued: certs.Issued, *, kept: bool = True, kind="selfSigned"):
    store = IdentityCertificates(SessionSecretStore())
    if kept:
        store.save(HUB, "d", "m", issued)
    dialog = CertificateDialog(_identity(issued, kind), HUB, store)
    qtbot.addWidget(dialog)
    dialog.show()
    qrun(until(lambda: not dialog.state.text().startswith("Reading"), 5, "the keyring read"))
    return dialog


def test_shows_the_certificate_and_exports_pem_and_pfx(qtbot, qrun, tmp_path: Path) -> None:
    issued = certs.self_signed("d/m", days=400)
    dialog = _dialog(qtbot, qrun, issued)
    assert dialog.subject.text() == "CN=d/m" and dialog.issuer.text() == "CN=d/m"
    assert dialog.sha1.text() == issued.sha1 and dialog.sha256.text() == issued.sha256
    assert dialog.expiry.text().startswith("expires ") and "renew" not in dialog.expiry.text()
    assert not dialog.export_pem_button.isEnabled()  # no passphrase yet

    dialog.passphrase.setText("export-pass")
    assert dialog.export_pem_button.isEnabled() and dialog.export_pfx_button.isEnabled()
    dialog.export(tmp_path / "m.pem", "pem")
    pem = (tmp_path / "m.pem").read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in pem and b"BEGIN PRIVATE KEY" not in pem
    assert oct((tmp_path / "m.pem").stat().st_mode & 0o777) == "0o600"
    key_start = pem.index(b"-----BEGIN ENCRYPTED")
    with pytest.raises((TypeError, ValueError)):
        certs.load_key(pem[key_start:], None)
    assert certs.same_key(issued.cert, certs.load_key(pem[key_start:], b"export-pass"))
    assert "Exported to" in dialog.result.text()

    dialog.export(tmp_path / "m.pfx", "pfx")
    key, cert, _ = pkcs12.load_key_and_certificates(
        (tmp_path / "m.pfx").read_bytes(), b"export-pass"
    )
    assert cert == issued.cert and key is not None


def test_warns_before_the_certificate_runs_out(qtbot, qrun) -> None:
    soon = certs.self_signed("d/m", days=12)
    dialog = _dialog(qtbot, qrun, soon)
    assert "renew it soon" in dialog.expiry.text()
    old = certs.self_signed("d/m", days=1, now=datetime.now(UTC) - timedelta(days=5))
    dialog = _dialog(qtbot, qrun, old)
    assert dialog.expiry.text().startswith("EXPIRED")


def test_a_certificate_made_elsewhere_says_so_and_ca_links_the_portal(qtbot, qrun) -> None:
    dialog = _dialog(qtbot, qrun, certs.self_signed("d/m"), kept=False, kind="certificateAuthority")
    assert "not in this app's keyring" in dialog.state.text()
    assert not dialog.export_pem_button.isEnabled()
    texts = " ".join(label.text() for label in dialog.findChildren(type(dialog.state)))
    assert "CN is <b>d/m</b>" in texts and "learn.microsoft.com" in texts
