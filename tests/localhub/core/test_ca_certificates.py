"""CA certificates on the hub: upload, proof of possession, persistence; and the X.509
login check every device transport calls (HubCore.authenticate_device)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin_explorer.connection import certificates as certs
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import AuthError, HubError


@pytest.fixture
def hub(tmp_path: Path):
    with HubCore.open(tmp_path / "hub") as core:
        yield core


def test_proof_of_possession_verifies_a_ca_and_survives_a_restart(tmp_path: Path) -> None:
    ca = certs.new_ca("Root")
    with HubCore.open(tmp_path / "hub") as core:
        added = core.certificates.add("root", ca.cert_pem)
        assert not added.is_verified and added.thumbprint == ca.sha1
        code = core.certificates.verification_code("root").verification_code
        assert code
        proof = certs.proof_of_possession(ca, code)
        assert core.certificates.verify("root", proof.cert_pem).is_verified
    with HubCore.open(tmp_path / "hub") as core:
        (kept,) = core.certificates.list()
        assert kept.name == "root" and kept.is_verified
        assert kept.to_json()["properties"]["isVerified"] is True
        core.certificates.delete("root")
        assert core.certificates.list() == []


@pytest.mark.parametrize(
    ("proof", "words"),
    [
        ("wrong code", "not the verification code"),
        ("wrong signer", "not signed by the private key"),
    ],
)
def test_verification_refuses_a_bad_proof(hub: HubCore, proof: str, words: str) -> None:
    ca = certs.new_ca("Root")
    hub.certificates.add("root", ca.cert_pem)
    code = hub.certificates.verification_code("root").verification_code
    assert code
    signer = ca if proof == "wrong code" else certs.new_ca("Root")
    cn = "0" * len(code) if proof == "wrong code" else code
    with pytest.raises(HubError, match=words) as info:
        hub.certificates.verify("root", certs.issue(signer, cn).cert_pem)
    assert info.value.status == 400
    assert not hub.certificates.get("root").is_verified


def test_upload_refuses_bad_input(hub: HubCore) -> None:
    with pytest.raises(HubError, match="not a PEM"):
        hub.certificates.add("root", "hello")
    with pytest.raises(HubError, match="not a CA"):
        hub.certificates.add("leaf", certs.self_signed("leaf").cert_pem)
    with pytest.raises(HubError, match="must be 1 to 64"):
        hub.certificates.add("bad name!", certs.new_ca("Root").cert_pem)
    hub.certificates.add("root", certs.new_ca("Root").cert_pem)
    with pytest.raises(HubError) as info:
        hub.certificates.add("root", certs.new_ca("Root").cert_pem)
    assert info.value.status == 409


def test_an_x509_identity_without_a_certificate_is_refused(hub: HubCore) -> None:
    issued = certs.self_signed("d")
    hub.put_device(
        "d",
        {
            "status": "enabled",
            "authentication": {
                "type": "selfSigned",
                "x509Thumbprint": {"primaryThumbprint": issued.sha1},
            },
        },
        None,
    )
    with pytest.raises(AuthError, match="presented no client certificate"):
        hub.authenticate_device("d", "localhost/d/?api-version=2019-10-01", None)
    identity = hub.authenticate_device("d", None, None, [issued.cert])
    assert identity.client_id == "d"
