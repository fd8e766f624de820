"""Simulating an X.509 module from picked certificate and key files, in the window."""

from __future__ import annotations

from pathlib import Path

from tests.ui.test_simulator import _connected, _open_hub, _window
from twin_explorer.connection import certificates as certs
from twin_explorer.service.models import X509Auth


def test_pasted_x509_string_with_picked_files_connects(qtbot, qrun, local_hub, tmp_path: Path):
    window = _window(qtbot)
    issued = certs.self_signed("x509-dev/picked")
    (tmp_path / "m.pem").write_text(issued.cert_pem)
    (tmp_path / "m.key").write_bytes(certs.key_pem(issued.key, b"file-pass"))

    async def scenario() -> None:
        service = await _open_hub(window, local_hub)
        await service.create_device("x509-dev")
        await service.create_module("x509-dev", "picked", X509Auth(issued.sha1))
        dialog = window.simulators.show_string_dialog()
        dialog.string_edit.setText(
            f"HostName={service.device_host};DeviceId=x509-dev;ModuleId=picked;x509=true"
        )
        dialog.accept()
        assert "needs the certificate and key files" in dialog.problem.text()
        dialog.cert_edit.setText(str(tmp_path / "m.pem"))
        dialog.key_edit.setText(str(tmp_path / "m.key"))
        dialog.accept()
        assert "encrypted" in dialog.problem.text()  # no passphrase yet
        dialog.key_pass.setText("file-pass")
        dialog.accept()
        panel = await _connected(window, "x509-dev/picked")
        assert panel.module.identity == "x509-dev/picked"
        await window.shutdown()

    qrun(scenario(), timeout=90)
