"""Direct-method handling rules: a fixed answer per method name, or ask someone.

A direct-method request carries no timeout on the device side (A.9): the service alone
enforces it. Asked methods therefore wait ``ask_timeout`` seconds (by default the service
SDK's default response timeout, 30 s) and then expire without an answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from twin_explorer.simulator.errors import InvalidSettings

DEFAULT_ASK_TIMEOUT = 30.0
NOT_FOUND_STATUS = 404


class Mode(StrEnum):
    FIXED = "fixed"
    ASK = "ask"


@dataclass(frozen=True)
class MethodRule:
    mode: Mode = Mode.FIXED
    status: int = 200
    payload: Any = None


def unknown_method_rule(name: str) -> MethodRule:
    return MethodRule(Mode.FIXED, NOT_FOUND_STATUS, {"message": f"No handler for method '{name}'."})


@dataclass
class MethodTable:
    """Rules by method name; ``fallback`` (None: 404 with a message) for the rest."""

    rules: dict[str, MethodRule] = field(default_factory=dict)
    fallback: MethodRule | None = None
    ask_timeout: float = DEFAULT_ASK_TIMEOUT

    def rule_for(self, name: str) -> MethodRule:
        rule = self.rules.get(name)
        if rule is not None:
            return rule
        return self.fallback if self.fallback is not None else unknown_method_rule(name)

    def set(self, name: str, rule: MethodRule) -> None:
        self.rules[name] = rule

    def remove(self, name: str) -> None:
        self.rules.pop(name, None)


def parse_method_spec(text: str) -> tuple[str, MethodRule]:
    """``NAME=STATUS:JSON`` (JSON optional: ``reboot=200``) -> (name, fixed rule)."""
    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise InvalidSettings(f"Not a method answer: {text!r}; use NAME=STATUS:JSON.")
    status_text, _, payload_text = rest.partition(":")
    status = parse_status(status_text)
    payload = parse_payload(payload_text) if payload_text.strip() else None
    return name, MethodRule(Mode.FIXED, status, payload)


def parse_status(text: str) -> int:
    try:
        status = int(text.strip())
    except ValueError:
        raise InvalidSettings(f"A method status is a whole number, not {text.strip()!r}.") from None
    if not -(2**31) <= status < 2**31:
        raise InvalidSettings("A method status must fit in 32 bits.")
    return status


def parse_payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidSettings(f"The method payload is not JSON: {exc}.") from None


@dataclass(eq=False)
class PendingMethod:
    """A method request waiting for someone to answer; ``answer`` resolves it."""

    request_id: str
    name: str
    payload: Any
    timeout: float
    future: asyncio.Future[tuple[int, Any]]
    received: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.received + self.timeout

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.deadline - (time.monotonic() if now is None else now))

    @property
    def open(self) -> bool:
        return not self.future.done()

    def answer(self, status: int, payload: Any = None) -> bool:
        """Answer the method; False when it was already answered or has expired."""
        if self.future.done():
            return False
        self.future.set_result((status, payload))
        return True
