"""``twin-explorer simulate`` end to end: a child process against a real local hub."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.simulator.conftest import new_module

REPO = Path(__file__).resolve().parents[2]


class Headless:
    """A running ``twin-explorer simulate`` and the JSON lines it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict] = []
        self.raw = ""

    @classmethod
    async def start(cls, args: list[str], *, stdin: str = "", env: dict | None = None):
        environment = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "twin_explorer",
            "simulate",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            cwd=REPO,
        )
        assert process.stdin is not None
        process.stdin.write(stdin.encode())
        await process.stdin.drain()
        process.stdin.close()
        return cls(process)

    async def next_event(self, name: str, within: float = 20.0) -> dict:
        """Read lines until one with ``"event": name``."""

        async def read() -> dict:
            assert self.process.stdout is not None
            while line := await self.process.stdout.readline():
                text = line.decode()
                self.raw += text
                event = json.loads(text)  # every stdout line is JSON
                self.lines.append(event)
                if event["event"] == name:
                    return event
            raise AssertionError(f"stdout ended before {name!r}: {self.lines}")

        return await asyncio.wait_for(read(), within)

    async def terminate(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal it (SIGTERM, or SIGINT as Ctrl-C sends); (exit code, stderr). The rest of
        stdout is read into ``lines``."""
        self.process.send_signal(signum)
        out, err = await asyncio.wait_for(self.process.communicate(), 30)
        text = out.decode()
        self.raw += text
        self.lines += [json.loads(line) for line in text.splitlines()]
        return self.process.returncode, err.decode()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


def _route(hub) -> list[str]:
    return ["--ca", hub.ca_cert, "--proxy", f"127.0.0.1:{hub.proxy_port}", "--retry-interval", "1"]


async def test_headless_from_stdin_answers_patches_methods_and_sends_telemetry(hub, service):
    device, module, cs = await new_module(service)
    key = cs.split("SharedAccessKey=")[1]
    sim = await Headless.start(
        [
            "--connection-string-stdin",
            *_route(hub),
            "--ack",
            "pnp",
            "--method",
            'reboot=201:{"ok": true}',
            "--telemetry",
            '{"n": "{{counter}}"}',
            "--interval",
            "0.05",
            "--property",
            "kind=demo",
        ],
        stdin=cs + "\n",
    )
    try:
        connected = await sim.next_event("connected")
        assert connected["identity"] == f"{device}/{module}"

        twin = await service.patch_twin(
            device, module, {"properties": {"desired": {"speed": 3}}}, None
        )
        version = twin.doc["properties"]["desired"]["$version"]
        received = await sim.next_event("desired_received")
        assert received["patch"] == {"speed": 3}
        sent = await sim.next_event("reported_sent")
        assert sent["patch"]["speed"]["av"] == version

        result = await service.invoke_method(device, module, "reboot", None)
        assert (result.status, result.payload) == (201, {"ok": True})
        answered = await sim.next_event("method_answered")
        assert (answered["name"], answered["status"]) == ("reboot", 201)

        telemetry = await sim.next_event("telemetry_sent")
        assert json.loads(telemetry["body"])["n"] >= 1
        assert telemetry["properties"] == {"kind": "demo"}

        code, stderr = await sim.terminate()
    finally:
        sim.kill()
    assert code == 0
    assert sim.lines[-1]["event"] == "closed"
    assert key not in sim.raw and key not in stderr
    assert cs not in sim.raw and cs not in stderr
    reported = (await service.get_twin(device, module)).doc["properties"]["reported"]
    assert reported["speed"]["value"] == 3


async def test_headless_from_an_environment_variable(hub, service):
    device, module, cs = await new_module(service)
    sim = await Headless.start(
        ["--connection-string-env", "SIM_CS", *_route(hub), "--ack", "echo"],
        env={"SIM_CS": cs},
    )
    try:
        await sim.next_event("connected")
        await service.patch_twin(device, module, {"properties": {"desired": {"a": 1}}}, None)
        await sim.next_event("reported_sent")
        code, stderr = await sim.terminate(signal.SIGINT)
    finally:
        sim.kill()
    assert code == 0
    assert [line["event"] for line in sim.lines][-1] == "closed"
    assert cs.split("SharedAccessKey=")[1] not in sim.raw + stderr
    assert (await service.get_twin(device, module)).doc["properties"]["reported"]["a"] == 1


async def test_headless_prints_a_failure_and_exits_1(hub, service):
    _, _, cs = await new_module(service)
    wrong = cs.split("SharedAccessKey=")[0] + "SharedAccessKey=d3Jvbmcga2V5IHdyb25nIGtleQ=="
    sim = await Headless.start(["--connection-string-stdin", *_route(hub)], stdin=wrong)
    try:
        failed = await sim.next_event("failed")
        code = await asyncio.wait_for(sim.process.wait(), 30)
    finally:
        sim.kill()
    assert code == 1
    assert "refused the credentials" in failed["reason"]


def test_headless_without_a_connection_string_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "twin_explorer", "simulate", "--connection-string-env", "NOPE"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "NOPE"} | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no connection string" in result.stderr
    assert result.stdout == ""


def test_the_simulator_and_its_command_load_no_qt():
    code = (
        "import sys, twin_explorer.cli as c, twin_explorer.simulator.cli, "
        "twin_explorer.simulator.module, twin_explorer.simulator.sdk as s;"
        "c.build_parser();"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'qasync')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)
