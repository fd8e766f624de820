"""The data folder holds every key: private to its owner (0700, files 0600), fixed at
start for folders an older version left readable, and used by one hub at a time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from azure.iot.hub.models import Twin

from tests.hubfixtures import HubProcess
from twin_explorer.service import local_hub as app_hub

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes")


def _modes(data_dir: Path) -> dict[str, int]:
    """Every path under data_dir (and data_dir itself as '.') with its permission bits."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _assert_private(data_dir: Path) -> None:
    modes = _modes(data_dir)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert not loose, f"readable by others: {loose}"
    # The files that hold keys are there, so the check covered them.
    assert {"hub.db", "hub.db-wal", "tls/server.key", "hub.lock"} <= set(modes)


def _write_a_twin(hub: HubProcess) -> None:
    manager = hub.registry_manager()
    manager.create_device_with_sas("d1", "", "", "enabled")
    manager.update_twin("d1", Twin(tags={"site": "lab"}), "*")


@posix_only
def test_a_new_data_folder_is_private(local_hub):
    _write_a_twin(local_hub)  # the WAL now holds data too
    _assert_private(local_hub.data_dir)


@posix_only
def test_a_readable_data_folder_from_before_is_made_private_at_start(local_hub):
    _write_a_twin(local_hub)
    assert local_hub.stop() == 0
    for path in [local_hub.data_dir, *local_hub.data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    local_hub.start()
    assert local_hub.registry_manager().get_twin("d1").tags == {"site": "lab"}
    _assert_private(local_hub.data_dir)


def test_a_second_hub_on_the_same_folder_refuses_and_names_the_first(local_hub, tmp_path):
    second = HubProcess(local_hub.data_dir)
    with pytest.raises(app_hub.LocalHubError):
        second.start()
    assert second.returncode not in (0, None)
    said = second.stderr_tail()
    assert f"The data folder {local_hub.data_dir.absolute()} is in use" in said
    assert f"process {local_hub.pid}: " in said and " hub --data-dir " in said
    assert "Traceback" not in said
    # The first hub never noticed.
    assert local_hub.registry_manager().get_device_registry_statistics().total_device_count == 0


async def test_the_app_says_in_plain_words_which_hub_holds_the_folder(local_hub):
    app_process = app_hub.LocalHubProcess(local_hub.data_dir, demo=True, mqtt_port=0)
    with pytest.raises(app_hub.LocalHubError) as raised:
        await app_process.start()
    text = str(raised.value)
    assert text.startswith("The local hub could not start. The data folder ")
    assert str(local_hub.data_dir.absolute()) in text
    assert f"process {local_hub.pid}" in text
    assert "--data-dir" in text  # what to do about it
    assert not app_process.running


def test_the_folder_is_free_again_once_its_hub_is_gone(local_hub):
    local_hub.kill()  # no shutdown code runs: the OS drops the lock
    second = HubProcess(local_hub.data_dir)
    try:
        second.start()
        assert second.registry_manager().get_device_registry_statistics() is not None
    finally:
        second.cleanup()
