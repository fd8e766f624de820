"""A full disk under the local hub: it stays up, reads work, nothing is lost, writes
resume when space returns; the error names the disk and the data folder, the hub logs it
once, and the app says it in plain words.

The disk is real: a 4 MB tmpfs mounted for the test (the tests run as root), filled to
the last byte, so SQLite meets ENOSPC exactly as on a full laptop disk. Where mounting is
not allowed the test is skipped rather than faked with a smaller page limit.
"""

from __future__ import annotations

import errno
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubfixtures import service_for
from tests.service.localhub import start_server
from twin_explorer.service import errors as e

# A patch big enough to need fresh pages in the WAL (strings are capped at 4 KB).
BIG = {"k": "x" * 4000}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left; return it (delete it to free)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left for close()
        for size in (65536, 1):  # big chunks, then the last bytes one by one
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


async def test_full_disk_says_so_keeps_reads_and_recovers(small_disk, hub_tls_seed, caplog):
    data_dir = small_disk / "hub"
    shutil.copytree(hub_tls_seed, data_dir / "tls")
    caplog.set_level(logging.INFO, logger="twin_explorer.localhub")
    async with start_server(data_dir) as server:
        service = service_for(server, sdk_retries=False)
        try:
            await service.create_device("d1")
            await service.patch_twin("d1", None, {"tags": {"kept": "before"}}, None)
            filler = fill(small_disk)

            failures = []
            for attempt in range(3):
                with pytest.raises(e.DiskFull) as raised:
                    await service.patch_twin("d1", None, {"tags": {f"t{attempt}": BIG}}, None)
                failures.append(raised.value)
            # Reads work meanwhile, and what was written before is there.
            assert (await service.get_twin("d1")).tags == {"kept": "before"}

            filler.unlink()
            patched = await service.patch_twin("d1", None, {"tags": {"after": BIG}}, None)
        finally:
            await service.aclose()
    assert patched.tags == {"kept": "before", "after": BIG}

    text = failures[0].text
    assert text.startswith(f"The local hub's disk is full (data folder {data_dir}): ")
    assert "free some space; your edit is kept." in text
    assert failures[0].status == 507

    hub_lines = [r for r in caplog.records if r.name.startswith("twin_explorer.localhub")]
    full = [r for r in hub_lines if "is full" in r.getMessage()]
    assert len(full) == 1, [r.getMessage() for r in full]  # once, not per request
    assert str(data_dir) in full[0].getMessage()
    assert not [r for r in hub_lines if r.exc_info], "no traceback for a full disk"
    assert any("has space again" in r.getMessage() for r in hub_lines)
