"""AMQP 1.0 performatives, termini, outcomes and SASL frames (spec 2.7, 3.4, 3.5, 5.3).

Field order is the wire order; defaults are the spec's. Every class encodes at full length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .composite import Composite
from .types import Symbol

register = Composite.register

# Link roles (attach/disposition `role`): False = sender, True = receiver.
SENDER = False
RECEIVER = True
# Settle modes.
SND_UNSETTLED, SND_SETTLED, SND_MIXED = 0, 1, 2
RCV_FIRST, RCV_SECOND = 0, 1


@register
@dataclass
class Error(Composite):
    DESCRIPTOR = 0x1D
    NAME = "amqp:error:list"
    KINDS = "symbol! str map"
    condition: Symbol
    description: str | None = None
    info: dict | None = None


# ---------------------------------------------------------------- outcomes / delivery states


@register
@dataclass
class Received(Composite):
    DESCRIPTOR = 0x23
    NAME = "amqp:received:list"
    KINDS = "uint! ulong!"
    section_number: int = 0
    section_offset: int = 0


@register
@dataclass
class Accepted(Composite):
    DESCRIPTOR = 0x24
    NAME = "amqp:accepted:list"
    KINDS = ""


@register
@dataclass
class Rejected(Composite):
    DESCRIPTOR = 0x25
    NAME = "amqp:rejected:list"
    KINDS = "composite"
    error: Error | None = None


@register
@dataclass
class Released(Composite):
    DESCRIPTOR = 0x26
    NAME = "amqp:released:list"
    KINDS = ""


@register
@dataclass
class Modified(Composite):
    DESCRIPTOR = 0x27
    NAME = "amqp:modified:list"
    KINDS = "bool bool map"
    delivery_failed: bool | None = None
    undeliverable_here: bool | None = None
    message_annotations: dict | None = None


Outcome = Accepted | Rejected | Released | Modified

# ---------------------------------------------------------------- termini


@register
@dataclass
class Source(Composite):
    DESCRIPTOR = 0x28
    NAME = "amqp:source:list"
    KINDS = "address uint symbol uint bool map symbol map composite symbols symbols"
    address: str | None = None
    durable: int | None = None
    expiry_policy: Symbol | None = None
    timeout: int | None = None
    dynamic: bool | None = None
    dynamic_node_properties: dict | None = None
    distribution_mode: Symbol | None = None
    filter: dict | None = None  # values are Described filters, echoed as they came
    default_outcome: Any = None
    outcomes: list[Symbol] | Symbol | None = None
    capabilities: list[Symbol] | Symbol | None = None


@register
@dataclass
class Target(Composite):
    DESCRIPTOR = 0x29
    NAME = "amqp:target:list"
    KINDS = "address uint symbol uint bool map symbols"
    address: str | None = None
    durable: int | None = None
    expiry_policy: Symbol | None = None
    timeout: int | None = None
    dynamic: bool | None = None
    dynamic_node_properties: dict | None = None
    capabilities: list[Symbol] | Symbol | None = None


# ---------------------------------------------------------------- performatives


@register
@dataclass
class Open(Composite):
    DESCRIPTOR = 0x10
    NAME = "amqp:open:list"
    KINDS = "str! str uint ushort uint symbols symbols symbols symbols map"
    container_id: str = ""
    hostname: str | None = None
    max_frame_size: int = 0xFFFFFFFF
    channel_max: int = 0xFFFF
    idle_timeout: int | None = None  # milliseconds
    outgoing_locales: Any = None
    incoming_locales: Any = None
    offered_capabilities: Any = None
    desired_capabilities: Any = None
    properties: dict | None = None


@register
@dataclass
class Begin(Composite):
    DESCRIPTOR = 0x11
    NAME = "amqp:begin:list"
    KINDS = "ushort uint! uint! uint! uint symbols symbols map"
    remote_channel: int | None = None
    next_outgoing_id: int = 0
    incoming_window: int = 0
    outgoing_window: int = 0
    handle_max: int = 0xFFFFFFFF
    offered_capabilities: Any = None
    desired_capabilities: Any = None
    properties: dict | None = None


@register
@dataclass
class Attach(Composite):
    DESCRIPTOR = 0x12
    NAME = "amqp:attach:list"
    KINDS = ("str! uint! bool! ubyte ubyte composite composite map bool uint ulong "
             "symbols symbols map")
    name: str = ""
    handle: int = 0
    role: bool = False
    snd_settle_mode: int = SND_MIXED
    rcv_settle_mode: int = RCV_FIRST
    source: Source | None = None
    target: Target | None = None
    unsettled: dict | None = None
    incomplete_unsettled: bool = False
    initial_delivery_count: int | None = None
    max_message_size: int | None = None
    offered_capabilities: Any = None
    desired_capabilities: Any = None
    properties: dict | None = None


@register
@dataclass
class Flow(Composite):
    DESCRIPTOR = 0x13
    NAME = "amqp:flow:list"
    KINDS = "uint uint! uint! uint! uint uint uint uint bool bool map"
    next_incoming_id: int | None = None
    incoming_window: int = 0
    next_outgoing_id: int = 0
    outgoing_window: int = 0
    handle: int | None = None
    delivery_count: int | None = None
    link_credit: int | None = None
    available: int | None = None
    drain: bool = False
    echo: bool = False
    properties: dict | None = None


@register
@dataclass
class Transfer(Composite):
    DESCRIPTOR = 0x14
    NAME = "amqp:transfer:list"
    KINDS = "uint! uint binary uint bool bool ubyte composite bool bool bool"
    handle: int = 0
    delivery_id: int | None = None
    delivery_tag: bytes | None = None
    message_format: int | None = None
    settled: bool | None = None
    more: bool = False
    rcv_settle_mode: int | None = None
    state: Any = None
    resume: bool = False
    aborted: bool = False
    batchable: bool = False


@register
@dataclass
class Disposition(Composite):
    DESCRIPTOR = 0x15
    NAME = "amqp:disposition:list"
    KINDS = "bool! uint! uint bool composite bool"
    role: bool = False
    first: int = 0
    last: int | None = None
    settled: bool = False
    state: Any = None
    batchable: bool = False


@register
@dataclass
class Detach(Composite):
    DESCRIPTOR = 0x16
    NAME = "amqp:detach:list"
    KINDS = "uint! bool composite"
    handle: int = 0
    closed: bool = False
    error: Error | None = None


@register
@dataclass
class End(Composite):
    DESCRIPTOR = 0x17
    NAME = "amqp:end:list"
    KINDS = "composite"
    error: Error | None = None


@register
@dataclass
class Close(Composite):
    DESCRIPTOR = 0x18
    NAME = "amqp:close:list"
    KINDS = "composite"
    error: Error | None = None


# ---------------------------------------------------------------- SASL (spec 5.3.3)


@register
@dataclass
class SaslMechanisms(Composite):
    DESCRIPTOR = 0x40
    NAME = "amqp:sasl-mechanisms:list"
    KINDS = "symbols!"
    sasl_server_mechanisms: Any = ()


@register
@dataclass
class SaslInit(Composite):
    DESCRIPTOR = 0x41
    NAME = "amqp:sasl-init:list"
    KINDS = "symbol! binary str"
    mechanism: Symbol
    initial_response: bytes | None = None
    hostname: str | None = None


@register
@dataclass
class SaslChallenge(Composite):
    DESCRIPTOR = 0x42
    NAME = "amqp:sasl-challenge:list"
    KINDS = "binary!"
    challenge: bytes = b""


@register
@dataclass
class SaslResponse(Composite):
    DESCRIPTOR = 0x43
    NAME = "amqp:sasl-response:list"
    KINDS = "binary!"
    response: bytes = b""


@register
@dataclass
class SaslOutcome(Composite):
    DESCRIPTOR = 0x44
    NAME = "amqp:sasl-outcome:list"
    KINDS = "ubyte! binary"
    code: int = 0  # 0 ok, 1 auth, 2 sys, 3 sys-perm, 4 sys-temp
    additional_data: bytes | None = None


Performative = Open | Begin | Attach | Flow | Transfer | Disposition | Detach | End | Close
SaslFrame = SaslMechanisms | SaslInit | SaslChallenge | SaslResponse | SaslOutcome
PERFORMATIVES = (Open, Begin, Attach, Flow, Transfer, Disposition, Detach, End, Close)
SASL_FRAMES = (SaslMechanisms, SaslInit, SaslChallenge, SaslResponse, SaslOutcome)
