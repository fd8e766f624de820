"""Fixtures for simulated-module tests: a real local hub and module identities on it.

The root conftest registers ``tests/hubfixtures.py`` (``local_hub`` and friends). Most
tests here share one hub for the session, each with identities of its own; tests that
stop the hub get their own ``local_hub``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from tests.hubfixtures import HubProcess, service_for
from twin_explorer.service.hub import HubService
from twin_explorer.simulator import ModuleEvent, SimulatedModule, Transport
from twin_explorer.twin.events import PatchEvent, PatchStream

_ids = itertools.count(1)


@pytest.fixture(scope="session")
def shared_hub(tmp_path_factory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub") / "data")
    hub.start()
    yield hub
    hub.cleanup()


@pytest.fixture
def hub(shared_hub: HubProcess) -> HubProcess:
    return shared_hub


@pytest_asyncio.fixture
async def service(hub: HubProcess) -> AsyncIterator[HubService]:
    svc = service_for(hub)
    yield svc
    await svc.aclose()


def transport_for(hub: HubProcess, **options: Any) -> Transport:
    options.setdefault("retry_interval", 1)
    options.setdefault("https_port", hub.rest_port)  # C2D settled by hand
    return Transport.for_local_hub(hub.ca_cert, hub.mqtt_port, hub.proxy_port, **options)


async def new_module(service: HubService, device_id: str | None = None) -> tuple[str, str, str]:
    """A fresh SAS module (and its device when new): (device_id, module_id, connection string)."""
    n = next(_ids)
    if device_id is None:
        device_id = f"sim-dev-{n}"
        await service.create_device(device_id)
    module_id = f"sim-mod-{n}"
    identity = await service.create_module(device_id, module_id)
    return device_id, module_id, service.connection_string(identity)


class Recorder:
    """Collects a module's events; ``wait`` returns the first one matching, in time."""

    def __init__(self) -> None:
        self.events: list[ModuleEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ModuleEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def reasons(self, after: int = 0) -> list[str]:
        """Status reasons, of the events from index ``after`` on."""
        return [e.data.get("reason", "") for e in self.events[after:] if e.kind == "status"]

    async def wait(
        self, predicate: Callable[[ModuleEvent], bool], within: float = 15.0, after: int = 0
    ) -> ModuleEvent:
        async def scan() -> ModuleEvent:
            seen = after
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), within)
        except TimeoutError:
            raise AssertionError(
                f"no matching event within {within}s; got {self.names()} {self.reasons()}"
            ) from None

    async def named(self, name: str, within: float = 15.0, after: int = 0) -> ModuleEvent:
        return await self.wait(lambda e: e.name == name, within, after)


class Simulation:
    """A started module with its recorder and the patch events it published."""

    def __init__(self, module: SimulatedModule, recorder: Recorder, patches: list[PatchEvent]):
        self.module = module
        self.recorder = recorder
        self.patches = patches


@pytest_asyncio.fixture
async def simulate(hub: HubProcess) -> AsyncIterator[Callable[..., Any]]:
    """Factory: ``await simulate(connection_string, **options)`` -> a started Simulation."""
    started: list[SimulatedModule] = []

    async def start(connection_string: str, **options: Any) -> Simulation:
        stream = options.pop("patches", None) or PatchStream()
        seen: list[PatchEvent] = []
        stream.subscribe(seen.append)
        options.setdefault("transport", transport_for(hub))
        module = SimulatedModule(connection_string, patches=stream, **options)
        recorder = Recorder()
        module.subscribe(recorder)
        started.append(module)
        await module.start()
        return Simulation(module, recorder, seen)

    yield start
    await asyncio.gather(*(module.close() for module in started))
