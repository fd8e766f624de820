"""Consumer groups of the built-in endpoint: the REST route the app calls and the
``twin-explorer hub consumer-groups`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hubfixtures import RestClient
from twin_explorer.localhub.runtime.server import HubServer


async def test_consumer_groups_through_rest(hub_server: HubServer):
    rest = RestClient.for_server(hub_server, "service")
    try:
        status, body = await rest.json("PUT", "/_localhub/eventhub/consumergroups/dash")
        assert status == 201 and body["consumerGroups"] == ["$Default", "dash"]
        assert body["name"] == hub_server.core.eventhub.name
        assert body["partitionIds"] == ["0", "1", "2", "3"]
        status, body = await rest.json("PUT", "/_localhub/eventhub/consumergroups/dash")
        assert status == 409 and "exists already" in body["Message"]
        status, body = await rest.json("PUT", "/_localhub/eventhub/consumergroups/a%20b")
        assert status == 400 and "not a valid consumer group name" in body["Message"]
        status, body = await rest.json("DELETE", "/_localhub/eventhub/consumergroups/$Default")
        assert status == 400
        status, body = await rest.json("DELETE", "/_localhub/eventhub/consumergroups/dash")
        assert status == 200 and body["consumerGroups"] == ["$Default"]
        status, _ = await rest.json("DELETE", "/_localhub/eventhub/consumergroups/dash")
        assert status == 404
    finally:
        await rest.close()


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_explorer",
            "hub",
            "--data-dir",
            str(data_dir),
            "consumer-groups",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_consumer_groups_command(tmp_path: Path):
    assert _cli(tmp_path, "add", "dash").stdout.split() == ["$Default", "dash"]
    assert _cli(tmp_path, "list").stdout.split() == ["$Default", "dash"]
    bad = _cli(tmp_path, "add", "no spaces")
    assert bad.returncode == 1 and "not a valid consumer group name" in bad.stderr
    assert _cli(tmp_path, "remove", "dash").stdout.split() == ["$Default"]
