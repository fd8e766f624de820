"""How a simulated module answers a desired patch: pure functions, no I/O.

* **echo**: the desired keys, copied to reported as they are (null deletes there too).
* **acknowledge**: the IoT Plug and Play writable-property answer, per property
  ``{"value": v, "ac": 200, "av": <desired $version>, "ad": "..."}``; a component
  (an object marked ``"__t": "c"``) is answered property by property inside it.
* **stamp**: the time the last desired change arrived, under the key the SDK samples
  use (``DateTimeLastDesiredPropertyChangeReceived``).
* **manual**: nothing; the user reports by hand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from twin_explorer.simulator.errors import InvalidSettings
from twin_explorer.twin.values import copy_json

BOOKKEEPING = ("$version", "$metadata")
COMPONENT_MARKER = "__t"
STAMP_KEY = "DateTimeLastDesiredPropertyChangeReceived"
ACK_DESCRIPTION = "Successfully executed patch"


class Behaviour(StrEnum):
    ECHO = "echo"
    ACKNOWLEDGE = "acknowledge"
    STAMP = "stamp"
    MANUAL = "manual"

    @property
    def label(self) -> str:
        return {
            Behaviour.ECHO: "Echo desired into reported",
            Behaviour.ACKNOWLEDGE: "Acknowledge (IoT Plug and Play)",
            Behaviour.STAMP: "Stamp the time of the last change",
            Behaviour.MANUAL: "Manual: report by hand",
        }[self]


def as_behaviour(value: object) -> Behaviour:
    """``value`` as a Behaviour; its text ("echo") is taken too, anything else refused.

    ``answer`` compares behaviours by identity, so a str that slipped through from a
    widget would silently answer as the wrong behaviour: coerce where it comes in.
    """
    try:
        return Behaviour(value)
    except ValueError:
        choices = ", ".join(b.value for b in Behaviour)
        text = f"Not a way to answer desired patches: {value!r}; use {choices}."
        raise InvalidSettings(text) from None


# The headless command's --ack spellings.
ACK_CHOICES = {
    "echo": Behaviour.ECHO,
    "pnp": Behaviour.ACKNOWLEDGE,
    "stamp": Behaviour.STAMP,
    "none": Behaviour.MANUAL,
}


def desired_changes(patch: dict[str, Any]) -> dict[str, Any]:
    """The patch without its root bookkeeping ($version, $metadata)."""
    return {k: copy_json(v) for k, v in patch.items() if k not in BOOKKEEPING}


def answer(
    behaviour: Behaviour,
    patch: dict[str, Any],
    *,
    version: int | None,
    received_at: str,
) -> dict[str, Any] | None:
    """The reported patch the behaviour sends for a desired ``patch``, or None."""
    changes = desired_changes(patch)
    if behaviour is Behaviour.MANUAL:
        return None
    if behaviour is Behaviour.STAMP:
        return {STAMP_KEY: received_at}
    if not changes:
        return None
    if behaviour is Behaviour.ECHO:
        return changes
    return _acknowledge(changes, version)


def _acknowledge(changes: dict[str, Any], version: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            out[key] = None  # the desired property is gone: so is its acknowledgement
        elif isinstance(value, dict) and value.get(COMPONENT_MARKER) == "c":
            inner = {k: v for k, v in value.items() if k != COMPONENT_MARKER}
            out[key] = {COMPONENT_MARKER: "c", **_acknowledge(inner, version)}
        else:
            out[key] = ack(value, version)
    return out


def ack(value: Any, version: int | None, status: int = 200, description: str = ACK_DESCRIPTION):
    """One Plug and Play writable-property acknowledgement."""
    return {"value": value, "ac": status, "av": version, "ad": description}
