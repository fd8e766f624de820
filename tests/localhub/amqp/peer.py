"""A scripted AMQP client for engine tests: writes frames the way real clients do, reads ours.

rhea and proton omit trailing null fields and send `end`/`close` as list0; `compact()`
writes performatives that way, `full()` the way azure-eventhub does (every field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twin_explorer.localhub.protocols.amqp import ServerConnection
from twin_explorer.localhub.protocols.amqp.composite import Composite
from twin_explorer.localhub.protocols.amqp.types import decode_value, encode, encode_list

AMQP = b"AMQP\x00\x01\x00\x00"
SASL = b"AMQP\x03\x01\x00\x00"


def compact(performative: Composite) -> bytes:
    """Described list without its trailing nulls (list0 when nothing is left)."""
    fields = performative.to_fields()
    while fields and fields[-1] is None:
        fields.pop()
    out = bytearray((0x00, 0x53, performative.DESCRIPTOR))
    encode_list(fields, out)
    return bytes(out)


def frame(channel: int, performative: Composite | bytes, payload: bytes = b"", *,
          short: bool = True, sasl: bool = False) -> bytes:
    body = performative if isinstance(performative, bytes) else (
        compact(performative) if short else encode(performative))
    body += payload
    return (len(body) + 8).to_bytes(4, "big") + bytes((2, 1 if sasl else 0)) + \
        channel.to_bytes(2, "big") + body


@dataclass
class Out:
    """One unit of server output: a protocol header, or a frame with its decoded body."""

    header: bytes | None = None
    channel: int = 0
    frame_type: int = 0
    performative: Any = None
    payload: bytes = b""
    raw_body: bytes = b""


def parse(data: bytes) -> list[Out]:
    out: list[Out] = []
    pos = 0
    while pos < len(data):
        if data[pos:pos + 4] == b"AMQP":
            out.append(Out(header=data[pos:pos + 8]))
            pos += 8
            continue
        size = int.from_bytes(data[pos:pos + 4], "big")
        assert size >= 8 and pos + size <= len(data), "truncated frame in server output"
        doff = data[pos + 4]
        body = data[pos + doff * 4:pos + size]
        item = Out(channel=int.from_bytes(data[pos + 6:pos + 8], "big"), frame_type=data[pos + 5],
                   raw_body=body)
        if body:
            item.performative, end = decode_value(body, 0)
            item.payload = body[end:]
        out.append(item)
        pos += size
    return out


class Peer:
    """Drives a ServerConnection and keeps everything it wrote, parsed."""

    def __init__(self, conn: ServerConnection | None = None) -> None:
        self.conn = conn or ServerConnection("localhub")
        self.events: list[Any] = []
        self.sent: list[Out] = []
        self.wire = bytearray()

    def feed(self, *chunks: bytes) -> list[Any]:
        events = []
        for chunk in chunks:
            events += self.conn.receive_data(chunk)
        self.events += events
        return events

    def output(self) -> list[Out]:
        data = self.conn.data_to_send()
        self.wire += data
        got = parse(data)
        self.sent += got
        return got

    def performatives(self, kind: type | None = None) -> list[Any]:
        items = [o.performative for o in self.output() if o.performative is not None]
        return [p for p in items if kind is None or isinstance(p, kind)]
