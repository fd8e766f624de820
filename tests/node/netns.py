"""A private network namespace whose ``localhost:443`` leads to the local hub's REST port.

The Node.js service SDK (``azure-iothub``) dials ``https://<HostName>`` on port 443 with a
``https.Agent`` of its own: Node's ``https.request`` takes ``host`` as a bare name (a
``HostName=localhost:8443`` fails to resolve), the service SDK reads no GatewayHostName
and honours no proxy setting, and its constructor replaces any agent a caller set. So
the tests give its process a network namespace of its own, where 443 is free, and
forward every connection made there to the hub: byte for byte, TLS stays end to end.

The namespace is made on a short-lived thread (``unshare(CLONE_NEWNET)`` affects only
the calling thread), which brings its loopback up and binds the listening sockets; an
open descriptor of the namespace keeps it alive after the thread ends. A child process
joins it with ``setns`` before it runs anything (:meth:`PrivateLoopback.enter`). Needs
CAP_SYS_ADMIN (root); :func:`private_loopback_or_skip` skips a test where it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading

import pytest

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_CHUNK = 64 * 1024
HTTPS_PORT = 443

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", b"lo", 0)
        (flags,) = struct.unpack_from("H", fcntl.ioctl(probe, _SIOCGIFFLAGS, request), 16)
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _listener(family: socket.AddressFamily, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


class PrivateLoopback:
    """A fresh network namespace listening on 127.0.0.1 and ::1 port 443 (or the ports
    given: 5671 too, for the SDKs' AMQP)."""

    def __init__(self, namespace_fd: int, listeners: list[socket.socket]) -> None:
        self.namespace_fd = namespace_fd
        self.listeners = listeners
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def create(cls, port: int = HTTPS_PORT, *more_ports: int) -> PrivateLoopback:
        made: list[PrivateLoopback | BaseException] = []

        def build() -> None:
            try:
                _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
                fd = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
                _loopback_up()
                listeners = []
                for each in (port, *more_ports):
                    listeners.append(_listener(socket.AF_INET, "127.0.0.1", each))
                    with contextlib.suppress(OSError):  # a kernel without IPv6 has no ::1
                        listeners.append(_listener(socket.AF_INET6, "::1", each))
                made.append(cls(fd, listeners))
            except BaseException as exc:  # handed to the caller's thread
                made.append(exc)

        thread = threading.Thread(target=build, name="private-netns")
        thread.start()
        thread.join()
        (result,) = made
        if isinstance(result, BaseException):
            raise result
        return result

    def enter(self) -> None:
        """Join the namespace: for ``preexec_fn`` in the child before it runs node."""
        _check(_libc.setns(self.namespace_fd, CLONE_NEWNET), "setns")

    async def forward_to(self, host: str, port: int, *, listen_port: int | None = None) -> None:
        """Send every connection made to the namespace's port 443 (or ``listen_port``; None:
        every port it listens on) on to ``host:port``."""

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self._writers.add(writer)
            try:
                hub_reader, hub_writer = await asyncio.open_connection(host, port)
            except OSError:
                return
            self._writers.add(hub_writer)
            await asyncio.gather(_copy(reader, hub_writer), _copy(hub_reader, writer))

        for listener in self.listeners:
            if listen_port is None or listener.getsockname()[1] == listen_port:
                self._servers.append(await asyncio.start_server(forward, sock=listener))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        # Closing both ends of every connection ends its copies (no cancelling: the
        # streams server treats a cancelled handler as an error).
        for writer in self._writers:
            writer.close()
        async with asyncio.timeout(10):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        for listener in self.listeners:
            listener.close()
        os.close(self.namespace_fd)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


def private_loopback_or_skip(*ports: int) -> PrivateLoopback:
    """A :class:`PrivateLoopback` on ``ports`` (default 443), or skip the test."""
    try:
        return PrivateLoopback.create(*(ports or (HTTPS_PORT,)))
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            pytest.skip(f"no private network namespace here ({exc.strerror}); needs root")
        raise
