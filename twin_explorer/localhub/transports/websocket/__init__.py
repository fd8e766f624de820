"""MQTT and AMQP over WebSockets on the REST port (``/$iothub/websocket``)."""

from twin_explorer.localhub.transports.websocket.endpoint import (
    IOTHUB_PATH,
    SERVICEBUS_PATH,
    StreamHandler,
    StreamHandlers,
    WebSocketEndpoint,
    WebSocketLimits,
)
from twin_explorer.localhub.transports.websocket.stream import WebSocketTransport, open_stream

__all__ = [
    "IOTHUB_PATH",
    "SERVICEBUS_PATH",
    "StreamHandler",
    "StreamHandlers",
    "WebSocketEndpoint",
    "WebSocketLimits",
    "WebSocketTransport",
    "open_stream",
]
