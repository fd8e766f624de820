"""Fixtures for hub-core tests: a fresh hub in a temp dir, with a clock tests can move."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from twin_explorer.localhub.core.hub import HubCore

START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


class FakeClock:
    """Epoch nanoseconds that move only when a test says so."""

    def __init__(self, ns: int = START_NS) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    @property
    def seconds(self) -> float:
        return self.ns / 1e9

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture
def core(hub_dir: Path, clock: FakeClock) -> Iterator[HubCore]:
    hub = HubCore.open(hub_dir, "localhost", clock=clock)
    yield hub
    hub.close()


def sas_body(primary: str | None = None, secondary: str | None = None) -> dict:
    """A device PUT body as create_device_with_sas sends it (B.5)."""
    keys = {}
    if primary is not None:
        keys = {"primaryKey": primary, "secondaryKey": secondary}
    return {
        "status": "enabled",
        "authentication": {"symmetricKey": keys, "type": "sas"},
        "capabilities": {"iotEdge": False},
    }
