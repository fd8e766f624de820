"""Server-side TLS for every hub listener, run through memory BIOs with pyOpenSSL.

Why not the stdlib ``ssl`` module (and asyncio's ``start_tls``): IoT Hub asks devices for
a client certificate and decides itself whether it is good (a self-signed one by its
thumbprint, a CA-signed one by a CA the hub verified). The stdlib has no verify callback:
with ``CERT_OPTIONAL`` OpenSSL fails the handshake unless the certificate chains to a
loaded trust anchor, and a registration holds only thumbprints. pyOpenSSL lets the
handshake accept any certificate (the verify callback says yes) and leaves the decision
to the hub core, which sees the chain through ``get_extra_info("peer_certificates")``.

:class:`TlsTransport` is the transport a listener's protocol sees: plaintext in and out,
flow control and buffer limits those of the socket underneath (the bytes queue there,
encrypted). The connection gate feeds it what the socket reads and keeps the handshake
to its deadline, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cryptography import x509
from OpenSSL import SSL

logger = logging.getLogger(__name__)

RECV_CHUNK = 65536
TLS_SHUTDOWN_TIMEOUT = 5.0  # after close_notify, how long the peer may take to read it


class TlsFailed(Exception):
    """The peer broke the TLS protocol (or the handshake failed)."""


def accept_any_certificate(
    connection: SSL.Connection, cert: Any, errno: int, depth: int, ok: int
) -> bool:
    """The handshake takes any client certificate; the hub decides who it is (A.14)."""
    return True


class TlsTransport(asyncio.Transport):
    """One server-side TLS connection over ``raw``; see the module docstring."""

    def __init__(self, raw: asyncio.Transport, context: SSL.Context) -> None:
        super().__init__()
        self._raw = raw
        # Kept for close(): it may be called from a callback run outside the loop's own
        # stepping (a Qt-driven loop in the app), where get_running_loop() fails.
        self._loop = asyncio.get_running_loop()
        self._context = context
        self._tls = SSL.Connection(context, None)
        self._tls.set_accept_state()
        self._protocol: asyncio.BaseProtocol | None = None
        self.handshaken = False
        self.peer_eof = False  # close_notify received
        self._closing = False
        self._peer_certificates: tuple[x509.Certificate, ...] = ()

    # -- the socket side (called by the gate) ---------------------------------------------

    def receive(self, data: bytes) -> list[bytes]:
        """Feed bytes read from the socket; return the plaintext they complete.

        Raises :class:`TlsFailed` when the peer breaks TLS; the caller then aborts.
        """
        plain: list[bytes] = []
        try:
            self._tls.bio_write(data)
            if not self.handshaken:
                self._tls.do_handshake()
                self.handshaken = True
                self._peer_certificates = self._read_peer_chain()
            while not self.peer_eof:
                plain.append(self._tls.recv(RECV_CHUNK))
        except SSL.WantReadError:
            pass
        except SSL.ZeroReturnError:
            self.peer_eof = True
        except SSL.Error as exc:
            self._flush()  # the alert that says why, if OpenSSL made one
            raise TlsFailed(str(exc) or type(exc).__name__) from None
        self._flush()
        return plain

    def _read_peer_chain(self) -> tuple[x509.Certificate, ...]:
        # On a server, OpenSSL's peer chain leaves out the leaf: put it first.
        leaf = self._tls.get_peer_certificate(as_cryptography=True)
        if leaf is None:
            return ()
        rest = self._tls.get_peer_cert_chain(as_cryptography=True) or []
        return (leaf, *(cert for cert in rest if cert != leaf))

    def _flush(self) -> None:
        while True:
            try:
                data = self._tls.bio_read(RECV_CHUNK)
            except SSL.WantReadError:
                return
            if not data:
                return
            if not self._raw.is_closing():
                self._raw.write(data)

    # -- asyncio.Transport ----------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        try:
            self._tls.sendall(bytes(data))
        except SSL.Error as exc:
            logger.debug("TLS write failed: %r", exc)
            self.abort()
            return
        self._flush()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS has no half-close")

    def close(self) -> None:
        """Send close_notify, then close the socket once what is queued is written."""
        if self._closing:
            return
        self._closing = True
        if self._raw.is_closing():  # the socket is gone already: nothing to say or wait for
            return
        if self.handshaken:
            with contextlib.suppress(SSL.Error):
                self._tls.shutdown()
            self._flush()
        self._raw.close()
        # A peer that never reads would hold the socket open: cut it after a while.
        if not self._loop.is_closed():
            self._loop.call_later(TLS_SHUTDOWN_TIMEOUT, self._raw.abort)

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self._raw.is_closing()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._raw.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``peer_certificates``: the client's chain, leaf first (empty without one).
        ``sslcontext`` is set so stream and HTTP protocols know they run over TLS."""
        if name == "peer_certificates":
            return self._peer_certificates
        if name == "sslcontext":
            return self._context
        if name == "ssl_object":
            return self._tls
        if name == "cipher":
            return self._tls.get_cipher_name()
        return self._raw.get_extra_info(name, default)
