"""Per-client-id MQTT session state that outlives a network connection.

The device SDK connects with clean session 0, never re-subscribes after a reconnect, and
reconnects at every SAS renewal (reference A.3, A.5). So the subscriptions and our un-acked
QoS 1 messages live here, not in the connection, and a reconnect picks them up again.

The packet ids of the client's QoS 1 messages are not kept: the hub acknowledges each one as
soon as it has taken it, and an acknowledged id is free again (MQTT-4.3.2-5). paho numbers
from 1 again on every connection, so an id seen on an earlier connection says nothing about
whether a message is new. Re-sent requests are recognised by their own ``$rid`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import LocalProtocolError
from .packets import SUBACK_FAILURE, Publish
from .topics import filter_matches, is_valid_filter

# IoT Hub allows five subscriptions per client (C.6); the SDK uses at most four (A.5).
MAX_SUBSCRIPTIONS = 5


class Session:
    def __init__(self, client_id: str, *, clean: bool = False) -> None:
        self.client_id = client_id
        self.clean = clean
        # The connection currently bound to this session (set by ServerConnection.accept);
        # an older connection that finds someone else here knows it was taken over.
        self.owner: object | None = None
        self.subscriptions: dict[str, int] = {}  # filter -> granted QoS
        self._outbound: dict[int, Publish] = {}  # our QoS 1 PUBLISHes awaiting PUBACK, in order
        self._next_packet_id = 1

    def __repr__(self) -> str:
        return (
            f"Session({self.client_id!r}, clean={self.clean}, "
            f"subscriptions={sorted(self.subscriptions)}, in_flight={len(self._outbound)})"
        )

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, requested_qos: int) -> int:
        """Add or replace a subscription; returns the SUBACK return code.

        IoT Hub never delivers at QoS 2 and grants at most QoS 1; invalid filters and filters
        beyond the fifth get 0x80 (failure) rather than a dropped connection.
        """
        if not is_valid_filter(topic_filter):
            return SUBACK_FAILURE
        if topic_filter not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            return SUBACK_FAILURE
        granted = min(requested_qos, 1)
        self.subscriptions[topic_filter] = granted
        return granted

    def unsubscribe(self, topic_filter: str) -> bool:
        return self.subscriptions.pop(topic_filter, None) is not None

    def matches(self, topic: str) -> bool:
        """Is `topic` covered by any subscription of this client?"""
        return any(filter_matches(f, topic) for f in self.subscriptions)

    def granted_qos(self, topic: str) -> int | None:
        """The highest QoS granted to a subscription matching `topic`, None if none does."""
        granted = [q for f, q in self.subscriptions.items() if filter_matches(f, topic)]
        return max(granted) if granted else None

    # -- our QoS 1 messages -------------------------------------------------------------------

    def allocate_packet_id(self) -> int:
        if len(self._outbound) >= 0xFFFF:
            raise LocalProtocolError("all 65535 packet ids are in flight")
        while True:
            packet_id = self._next_packet_id
            self._next_packet_id = packet_id % 0xFFFF + 1
            if packet_id not in self._outbound:
                return packet_id

    def track_outbound(self, publish: Publish) -> None:
        assert publish.packet_id is not None
        self._outbound[publish.packet_id] = publish

    def complete_outbound(self, packet_id: int) -> Publish | None:
        """Forget a message the client acknowledged; None if it was not in flight."""
        return self._outbound.pop(packet_id, None)

    @property
    def in_flight(self) -> tuple[Publish, ...]:
        """Un-acked QoS 1 messages in send order; re-sent with DUP on the next connection."""
        return tuple(self._outbound.values())


class SessionStore:
    """client id -> Session, for every session the hub keeps."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._sessions

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def get(self, client_id: str) -> Session | None:
        return self._sessions.get(client_id)

    def attach(self, client_id: str, clean_session: bool) -> tuple[Session, bool]:
        """The session for an accepted CONNECT, and CONNACK's session-present flag.

        Clean session 1 always starts afresh (MQTT-3.1.2-6); clean session 0 resumes a kept
        session if there is one (MQTT-3.1.2-4).
        """
        existing = self._sessions.get(client_id)
        if not clean_session and existing is not None and not existing.clean:
            return existing, True
        if existing is not None:
            self.discard(client_id)
        session = Session(client_id, clean=clean_session)
        self._sessions[client_id] = session
        return session, False

    def discard(self, client_id: str) -> None:
        """Forget a session, e.g. when its identity is deleted (A.5)."""
        session = self._sessions.pop(client_id, None)
        if session is not None:
            session.owner = None  # a connection still bound to it learns it was dropped

    def release(self, session: Session) -> None:
        """Call when a connection ends: a clean session ends with it (MQTT-3.1.2-6)."""
        if session.clean and self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
