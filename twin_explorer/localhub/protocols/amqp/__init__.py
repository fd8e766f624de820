"""Sans-I/O AMQP 1.0 server core for the local hub: bytes in, events out.

Nothing here does I/O, touches asyncio or reads a clock; an asyncio shell moves the bytes.
- `types`: primitive values, type-preserving `encode`/`decode`.
- `composite`, `performatives`: described lists, always encoded at full length.
- `message`: `Message` and its sections; `encode_message`/`decode_message`.
- `frames`: the 8-byte frame header and protocol headers.
- `connection`: `ServerConnection`, the per-socket engine; `events`: what it reports;
  `links`: `Link` and `Delivery`; `errors`: condition symbols.
"""

from . import errors
from .connection import ServerConnection
from .events import (
    ConnectionClosed,
    ConnectionOpened,
    CreditChanged,
    DeliveryUpdated,
    Event,
    LinkAttachRequested,
    LinkDetached,
    MessageReceived,
    SaslInitReceived,
    SessionBegun,
    SessionEnded,
)
from .exceptions import AmqpDecodeError, AmqpFramingError
from .links import Delivery, Link
from .message import (
    Data,
    Header,
    Message,
    Properties,
    Sequence,
    Value,
    decode_message,
    encode_message,
)
from .performatives import (
    Accepted,
    Attach,
    Begin,
    Close,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    Modified,
    Open,
    Received,
    Rejected,
    Released,
    SaslChallenge,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    SaslResponse,
    Source,
    Target,
    Transfer,
)
from .types import (
    Array,
    Byte,
    Char,
    Described,
    Float,
    Int,
    Long,
    Short,
    Symbol,
    Timestamp,
    Typed,
    UByte,
    UInt,
    ULong,
    UShort,
    decode,
    encode,
)

__all__ = [
    "Accepted", "AmqpDecodeError", "AmqpFramingError", "Array", "Attach", "Begin", "Byte",
    "Char", "Close", "ConnectionClosed", "ConnectionOpened", "CreditChanged", "Data",
    "Delivery", "DeliveryUpdated", "Described", "Detach", "Disposition", "End", "Error",
    "Event", "Float", "Flow", "Header", "Int", "Link", "LinkAttachRequested", "LinkDetached",
    "Long", "Message", "MessageReceived", "Modified", "Open", "Properties", "Received",
    "Rejected", "Released", "SaslChallenge", "SaslInit", "SaslInitReceived", "SaslMechanisms",
    "SaslOutcome", "SaslResponse", "Sequence", "ServerConnection", "SessionBegun",
    "SessionEnded", "Short", "Source", "Symbol", "Target", "Timestamp", "Transfer", "Typed",
    "UByte", "UInt", "ULong", "UShort", "Value", "decode", "decode_message", "encode",
    "encode_message", "errors",
]
