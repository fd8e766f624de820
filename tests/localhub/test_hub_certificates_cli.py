"""``twin-explorer hub certificates``: CA certificates on a running hub, through the CLI
and the REST admin route it uses, and what verifying one lets devices do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.hubfixtures import HubProcess, RestClient
from twin_explorer.connection import certificates as certs
from twin_explorer.localhub.runtime.server import HubServer

ENV = "TE_TEST_HUB_CS"
COMMAND = (sys.executable, "-m", "twin_explorer", "hub", "certificates")


def cli(
    hub: HubProcess, *args: str, connection_string: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, ENV: connection_string or hub.service_connection_string}
    return subprocess.run(
        [*COMMAND, "--connection-string-env", ENV, "--ca", hub.ca_cert, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_add_verify_list_delete_through_the_cli(local_hub: HubProcess, tmp_path: Path) -> None:
    ca = certs.new_ca("CLI Test Root")
    (tmp_path / "ca.pem").write_text(ca.cert_pem)
    (tmp_path / "ca.key").write_bytes(certs.key_pem(ca.key))

    added = cli(local_hub, "add", "root", str(tmp_path / "ca.pem"))
    assert added.returncode == 0, added.stderr
    assert "unverified" in added.stdout
    listed = cli(local_hub, "list")
    assert listed.stdout.split("\t")[:3] == ["root", "unverified", ca.sha1]

    code = cli(local_hub, "verify", "root")  # no proof yet: prints the code to sign
    assert code.returncode == 0 and len(code.stdout.strip()) >= 32
    assert "--proof FILE" in code.stderr

    wrong = certs.proof_of_possession(certs.new_ca("CLI Test Root"), code.stdout.strip())
    (tmp_path / "wrong.pem").write_text(wrong.cert_pem)
    refused = cli(local_hub, "verify", "root", "--proof", str(tmp_path / "wrong.pem"))
    assert refused.returncode == 1
    assert "not signed by the private key of 'root'" in refused.stderr

    verified = cli(local_hub, "verify", "root", "--key", str(tmp_path / "ca.key"))
    assert verified.returncode == 0, verified.stderr
    assert cli(local_hub, "list").stdout.split("\t")[1] == "verified"

    assert cli(local_hub, "delete", "root").returncode == 0
    assert cli(local_hub, "list").stdout == ""
    gone = cli(local_hub, "delete", "root")
    assert gone.returncode == 1 and "No CA certificate named 'root'" in gone.stderr
    for result in (added, listed, code, verified):
        assert "SharedAccessKey" not in result.stdout + result.stderr


async def test_changing_certificates_needs_registry_write(hub_server: HubServer) -> None:
    reader = RestClient.for_server(hub_server, policy="registryRead")
    try:
        body = {"certificate": certs.new_ca("Root").cert_pem}
        status, doc = await reader.json("PUT", "/_localhub/certificates/root", json_body=body)
        assert status == 401 and "Registry Write" in doc["Message"]
        status, doc = await reader.json("GET", "/_localhub/certificates")
        assert status == 200 and doc == {"value": []}
    finally:
        await reader.close()


async def test_rest_route_answers_in_arm_shape(hub_rest: RestClient) -> None:
    ca = certs.new_ca("Root")
    status, doc = await hub_rest.json(
        "PUT", "/_localhub/certificates/root", json_body={"certificate": ca.cert_pem}
    )
    assert status == 200
    assert doc["name"] == "root"
    assert doc["properties"]["thumbprint"] == ca.sha1
    assert doc["properties"]["isVerified"] is False
    status, doc = await hub_rest.json(
        "POST", "/_localhub/certificates/root/generateVerificationCode"
    )
    assert status == 200 and doc["properties"]["verificationCode"]
    status, doc = await hub_rest.json("PUT", "/_localhub/certificates/bad", json_body={})
    assert status == 400
