"""Simulated modules with X.509: ``twin-explorer simulate --cert --key`` against a real
hub, and the key never on disk in plain text."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.simulator.test_cli import Headless, _route
from twin_explorer.connection import certificates as certs
from twin_explorer.service.models import X509Auth
from twin_explorer.simulator.errors import InvalidSettings
from twin_explorer.simulator.x509_files import X509Identity, sdk_files

PASSPHRASE = "headless-test-passphrase"


async def test_simulate_with_a_certificate_echoes_desired(
    hub, service, tmp_path: Path, app_home: Path
) -> None:
    device, module = "sim-x509-dev", "sim-x509-mod"
    issued = certs.self_signed(certs.identity_cn(device, module))
    await service.create_device(device)
    await service.create_module(device, module, X509Auth(issued.sha1))
    cert_file, key_file = tmp_path / "m.pem", tmp_path / "m.key"
    cert_file.write_text(issued.cert_pem)
    key_file.write_bytes(certs.key_pem(issued.key, PASSPHRASE.encode()))
    cs = f"HostName={hub.hostname};DeviceId={device};ModuleId={module};x509=true"
    temp = tmp_path / "tmp"
    temp.mkdir()
    key_line = certs.key_pem(issued.key).decode().splitlines()[1]
    sim = await Headless.start(
        [
            "--connection-string-stdin",
            *_route(hub),
            "--cert",
            str(cert_file),
            "--key",
            str(key_file),
            "--key-passphrase-env",
            "SIM_KEY_PASS",
        ],
        stdin=cs + "\n",
        env={"SIM_KEY_PASS": PASSPHRASE, "TMPDIR": str(temp)},
    )
    try:
        connected = await sim.next_event("connected")
        assert connected["identity"] == f"{device}/{module}"
        # The SDK's encrypted copy of the key is gone once the client exists.
        assert list(temp.rglob("*")) == []
        argv = _cmdline(sim.process.pid)
        assert PASSPHRASE.encode() not in argv and key_line.encode() not in argv
        await service.patch_twin(device, module, {"properties": {"desired": {"rate": 7}}}, None)
        await sim.next_event("reported_sent")
        code, stderr = await sim.terminate(signal.SIGINT)
    finally:
        sim.kill()
    assert code == 0
    assert PASSPHRASE not in sim.raw + stderr and key_line not in sim.raw + stderr
    assert _files_holding(app_home, key_line.encode()) == []  # the log file included
    assert (await service.get_twin(device, module)).doc["properties"]["reported"]["rate"] == 7


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_sdk_files_hold_the_key_encrypted_and_vanish() -> None:
    issued = certs.self_signed("d/m")
    identity = X509Identity(issued.cert_pem, issued.key)
    assert "key" not in repr(identity).lower().replace("x509identity", "")
    with sdk_files(identity) as (cert_file, key_file, passphrase):
        folder = Path(key_file).parent
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        data = Path(key_file).read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # useless without the passphrase
            serialization.load_pem_private_key(data, password=None)
        assert certs.load_key(data, passphrase.encode()).private_numbers() == (
            issued.key.private_numbers()
        )
        assert Path(cert_file).read_text() == issued.cert_pem
    assert not folder.exists()


def test_a_key_that_is_not_the_certificates_is_refused() -> None:
    one, other = certs.self_signed("a"), certs.self_signed("b")
    with pytest.raises(InvalidSettings, match="does not belong"):
        X509Identity.from_pem(one.cert_pem, certs.key_pem(other.key))
    with pytest.raises(InvalidSettings, match="encrypted"):
        X509Identity.from_pem(one.cert_pem, certs.key_pem(one.key, b"secret"))
    assert os.environ.get("SIM_KEY_PASS") is None
