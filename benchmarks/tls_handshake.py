"""What a TLS connection costs the hub: its pyOpenSSL path against the stdlib's.

    python benchmarks/tls_handshake.py [N]

N sequential connections (connect, TLS handshake, one echoed line, close) to an echo
server behind the hub's ConnectionGate with ``hub_tls_context`` (pyOpenSSL through
memory BIOs, a client certificate requested), and the same against asyncio's stdlib TLS
server with ``server_context``. Client and server share this process, so the process
CPU time per connection compares the two server sides (the client's share is equal);
wall times depend on the machine's load.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from twin_explorer.localhub.runtime.tls import (
    client_context,
    ensure_certificates,
    hub_tls_context,
    server_context,
)
from twin_explorer.localhub.transports.listeners import ConnectionGate, Limits


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(await reader.readline())
        await writer.drain()
    finally:
        writer.close()


async def _connections(port: int, ctx, count: int) -> tuple[float, float, float]:
    """(median ms, p95 ms, process CPU ms per connection)."""
    cpu = time.process_time()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
        )
        writer.write(b"x\n")
        await reader.readline()
        times.append(time.perf_counter() - start)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    times.sort()
    per_cpu = (time.process_time() - cpu) / count * 1000
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.95)] * 1000, per_cpu


async def main(count: int) -> None:
    certs = ensure_certificates(Path(tempfile.mkdtemp()))
    client = client_context(certs)
    stdlib = await asyncio.start_server(_echo, "127.0.0.1", 0, ssl=server_context(certs))
    gate = ConnectionGate(Limits(handshakes_per_second=1e6))
    hub = await gate.serve(gate.stream_factory(_echo), "127.0.0.1", 0, tls=hub_tls_context(certs))
    servers = {"stdlib ssl": stdlib, "hub (pyOpenSSL)": hub}
    for name in (*servers, *servers):  # twice, interleaved
        port = servers[name].sockets[0].getsockname()[1]
        median, p95, cpu = await _connections(port, client, count)
        print(f"{name:16} median {median:6.2f} ms  p95 {p95:6.2f} ms  CPU {cpu:.2f} ms/conn")
    stdlib.close()
    await ConnectionGate.stop_serving(hub)
    gate.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
