"""MQTT sessions that outlive connections, and their subscriptions kept across restarts.

Clean-session-0 sessions keep subscriptions and un-acked QoS 1 messages across
reconnects; the SDK never re-subscribes (A.5). Their subscriptions are also saved in the
hub's store, so they survive a hub restart too. Un-acked QoS 1 messages are not kept:
after a restart the SDK repeats its unanswered requests and asks for the twin.
"""

from __future__ import annotations

import logging

from twin_explorer.localhub.core.presence import covers
from twin_explorer.localhub.protocols.mqtt import Session, SessionStore
from twin_explorer.localhub.store.sessions import SavedSubscriptions
from twin_explorer.localhub.store.sqlite import Store

logger = logging.getLogger(__name__)


class MqttSessions:
    """The hub's MQTT sessions, saved to the store when their subscriptions change."""

    def __init__(self, store: Store) -> None:
        self.sessions = SessionStore()
        self._saved = SavedSubscriptions(store)
        # Per client id, the lock token of each C2D message in flight, by packet id: the
        # session re-sends it on the next connection, whose PUBACK then completes it.
        self._c2d_locks: dict[str, dict[int, str]] = {}
        try:
            if restored := self._restore():
                logger.info("restored the MQTT sessions of %d clients", restored)
        except Exception:
            logger.exception("restoring MQTT sessions failed; clients start afresh")

    def _restore(self) -> int:
        saved = self._saved.load()
        for client_id, subscriptions in saved.items():
            session, _ = self.sessions.attach(client_id, False)
            for topic_filter, qos in subscriptions.items():
                session.subscribe(topic_filter, qos)
        return len(saved)

    def attach(self, client_id: str, clean: bool) -> tuple[Session, bool]:
        session, present = self.sessions.attach(client_id, clean)
        if clean or not present:
            self._c2d_locks.pop(client_id, None)  # no session re-sends those messages
        if clean:
            self.save()  # a clean start ends the kept session
        return session, present

    def release(self, session: Session) -> None:
        current = self.sessions.get(session.client_id) in (None, session)
        self.sessions.release(session)
        if session.clean and current:  # its in-flight messages go; their locks run out
            self._c2d_locks.pop(session.client_id, None)

    def c2d_sent(self, client_id: str, packet_id: int, lock_token: str) -> None:
        self._c2d_locks.setdefault(client_id, {})[packet_id] = lock_token

    def c2d_acked(self, client_id: str, packet_id: int) -> str | None:
        """The lock token of the C2D message ``packet_id`` acknowledged, if it was one."""
        locks = self._c2d_locks.get(client_id)
        return None if locks is None else locks.pop(packet_id, None)

    def discard(self, device_id: str, module_id: str | None) -> None:
        """A deleted identity's sessions go (all of a device's when module_id is None)."""
        for session in list(self.sessions):
            if covers(device_id, module_id, session.client_id):
                self.sessions.discard(session.client_id)
                self._c2d_locks.pop(session.client_id, None)
        self.save()

    def save(self) -> None:
        kept = {
            s.client_id: dict(s.subscriptions)
            for s in self.sessions
            if not s.clean and s.subscriptions
        }
        try:
            self._saved.save(kept)
        except Exception:  # the live session still works; only a restart would lose it
            logger.exception("saving MQTT subscriptions failed")
