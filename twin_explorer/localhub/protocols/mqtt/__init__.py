"""Sans-I/O MQTT 3.1.1 server core for the local hub: bytes in, events out.

Nothing here does I/O, touches asyncio or reads a clock; an asyncio shell moves the bytes.
- `packets`: packet values; `codec`: `encode()` and the incremental `Decoder`.
- `connection`: `ServerConnection`, the per-socket state machine; `events`: what it reports.
- `session`: `Session`/`SessionStore`, state kept per client id across connections.
- `topics`: MQTT filter rules; `iothub_topics`: IoT Hub's topic grammar (reference A.6-A.11).
"""

from .codec import DEFAULT_MAX_PACKET_SIZE, Decoder, encode
from .connection import ConnectionState, ServerConnection
from .errors import LocalProtocolError, MqttProtocolError
from .events import (
    NEED_DATA,
    PAUSED,
    ConnectRequested,
    Disconnected,
    DisconnectReason,
    PubAcked,
    Published,
    Subscribed,
    Unsubscribed,
)
from .packets import ConnackCode
from .session import Session, SessionStore

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "NEED_DATA",
    "PAUSED",
    "ConnackCode",
    "ConnectRequested",
    "ConnectionState",
    "Decoder",
    "DisconnectReason",
    "Disconnected",
    "LocalProtocolError",
    "MqttProtocolError",
    "PubAcked",
    "Published",
    "ServerConnection",
    "Session",
    "SessionStore",
    "Subscribed",
    "Unsubscribed",
    "encode",
]
