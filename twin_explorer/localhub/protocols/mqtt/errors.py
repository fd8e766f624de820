"""The two ways MQTT processing can fail: the peer broke the protocol, or our caller did."""

from __future__ import annotations


class MqttProtocolError(Exception):
    """The remote side sent something MQTT 3.1.1 does not allow.

    Connection-fatal: the shell closes that one connection (MQTT 3.1.1 has no way to tell
    the client why, a server simply drops the socket).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalProtocolError(Exception):
    """Our own code asked for something impossible (a bug in the caller, not the peer)."""
