"""A simulated module's reports land in the watched twin's history at once (the module
publishes each on the patch stream), and a poll later confirms them without duplicates."""

from __future__ import annotations

from tests.simulator.conftest import new_module
from tests.ui.conftest import until
from twin_explorer.service.history import TwinHistory
from twin_explorer.service.watch import TwinWatcher, section_of
from twin_explorer.simulator import Behaviour
from twin_explorer.twin.events import Direction, PatchStream, Section
from twin_explorer.twin.identity import identity_path


async def test_quick_reports_each_land_in_the_history(service, simulate):
    device, module, cs = await new_module(service)
    identity = identity_path(device, module)
    stream, history = PatchStream(), TwinHistory()
    watcher = TwinWatcher(stream, history, interval=5)
    watcher.set_service(service)
    sim = await simulate(cs, behaviour=Behaviour.MANUAL, patches=stream)
    try:
        watcher.select(device, module)
        await until(lambda: history.latest(identity) is not None, what="the first look")
        polls = watcher.status(identity).polls

        for n in (1, 2):  # back to back, well inside one poll
            await sim.module.report({"n": n})
        versions = history.versions(identity)
        assert [section_of(v.twin, Section.REPORTED) for v in versions[1:]] == [
            {"n": 1},
            {"n": 2},
        ]

        await until(lambda: watcher.status(identity).polls > polls, what="a poll")
        real = await service.get_twin(device, module)
        versions = history.versions(identity)
        assert len(versions) == 3  # the poll saw the newest: confirmed, not added
        assert versions[-1].etag == real.etag and not versions[-1].provisional
        observed = [e for e in sim.patches if e.direction is Direction.OBSERVED]
        assert observed == []
    finally:
        await watcher.aclose()
