"""Subscriptions of kept device sessions, saved so they survive a hub restart.

The device SDK subscribes once per feature and never again, not even after a reconnect
(reference A.5): it relies on the hub keeping its clean-session-0 session. A hub that
forgot subscriptions when restarted would silently stop delivering desired patches and
method requests to every client that reconnects. So the subscription sets live in the
hub's store as one small JSON value, written when they change (rarely: a handful of
SUBSCRIBEs per client lifetime). Protocol-neutral: ``{client id: {filter: qos}}``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin_explorer.localhub.store.sqlite import Store

logger = logging.getLogger(__name__)

META_KEY = "mqtt_subscriptions"

Subscriptions = dict[str, dict[str, int]]


class SavedSubscriptions:
    """Reads and writes the saved subscription sets."""

    def __init__(self, store: Store, key: str = META_KEY) -> None:
        self._store = store
        self._key = key
        self._written: str | None = None

    def load(self) -> Subscriptions:
        """The saved sets; {} when there are none or they cannot be read."""
        text = self._store.get_meta(self._key)
        if not text:
            return {}
        try:
            saved = json.loads(text)
            loaded = {
                str(cid): {str(f): q for f, q in dict(subs).items() if isinstance(q, int)}
                for cid, subs in saved.items()
            }
        except (ValueError, TypeError, AttributeError):
            logger.warning("ignoring unreadable saved subscriptions")
            return {}
        self._written = text
        return loaded

    def save(self, kept: Subscriptions) -> None:
        """Write the sets, if they changed since last time."""
        ordered = {cid: dict(sorted(subs.items())) for cid, subs in kept.items()}
        text = json.dumps(ordered, sort_keys=True, separators=(",", ":"))
        if text == self._written:
            return
        # No fsync: losing the last subscription change in a power cut is acceptable.
        with self._store.transaction(durable=False):
            self._store.set_meta(self._key, text)
        self._written = text
