"""MQTT subscriptions that survive a hub restart.

The device SDK subscribes once per feature and never again, not even after a reconnect
(reference A.5): it relies on the hub keeping its clean-session-0 session. A hub that
forgot subscriptions when restarted would silently stop delivering desired patches and
method requests to every client that reconnects. So the subscription sets of kept
sessions live in the hub's store as one small JSON value, written when they change
(rarely: a handful of SUBSCRIBEs per client lifetime). Un-acked QoS 1 messages are not
kept: after a restart the SDK repeats its unanswered requests and asks for the twin.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from twin_explorer.localhub.protocols.mqtt import SessionStore

if TYPE_CHECKING:
    from twin_explorer.localhub.store.sqlite import Store

logger = logging.getLogger(__name__)

META_KEY = "mqtt_subscriptions"


class PersistedSubscriptions:
    """Loads kept sessions into a ``SessionStore`` and writes their subscriptions back."""

    def __init__(self, store: Store, sessions: SessionStore) -> None:
        self._store = store
        self._sessions = sessions
        self._written: str | None = None

    def restore(self) -> int:
        """Recreate the kept sessions with their subscriptions; how many there were."""
        text = self._store.get_meta(META_KEY)
        if not text:
            return 0
        try:
            saved = json.loads(text)
            items = [(str(cid), dict(subs)) for cid, subs in saved.items()]
        except (ValueError, TypeError, AttributeError):
            logger.warning("ignoring unreadable saved MQTT subscriptions")
            return 0
        for client_id, subscriptions in items:
            session, _ = self._sessions.attach(client_id, False)
            for topic_filter, qos in subscriptions.items():
                if isinstance(qos, int):
                    session.subscribe(topic_filter, qos)
        self._written = text
        return len(items)

    def save(self) -> None:
        """Write the subscriptions of every kept session, if they changed since last time."""
        kept = {
            s.client_id: dict(sorted(s.subscriptions.items()))
            for s in self._sessions
            if not s.clean and s.subscriptions
        }
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
        if text == self._written:
            return
        # No fsync: losing the last subscription change in a power cut is acceptable.
        with self._store.transaction(durable=False):
            self._store.set_meta(META_KEY, text)
        self._written = text
