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


def as_mode(value: object) -> Mode:
    """``value`` as a Mode; its text ("fixed") is taken too, anything else refused.

    Widgets may hand over an enum's text (a QComboBox stores a StrEnum as a str), and
    the answering code compares modes by identity: coerce at the boundary, once.
    """
    try:
        return Mode(value)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise InvalidSettings(f"Not a way to answer a method: {value!r}; use {choices}.") from None


def check_status(value: object) -> int:
    """A method status: a whole number that fits in 32 bits (what IoT Hub carries)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSettings(f"A method status is a whole number, not {value!r}.")
    if not -(2**31) <= value < 2**31:
        raise InvalidSettings("A method status must fit in 32 bits.")
    return value


def check_payload(value: Any) -> Any:
    """A method payload: anything JSON can carry."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = "The method payload must be JSON (objects, lists, text, numbers)."
        raise InvalidSettings(text) from None
    return value


@dataclass(frozen=True)
class MethodRule:
    mode: Mode = Mode.FIXED
    status: int = 200
    payload: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", as_mode(self.mode))
        check_status(self.status)
        check_payload(self.payload)


def unknown_method_rule(name: str) -> MethodRule:
    return MethodRule(Mode.FIXED, NOT_FOUND_STATUS, {"message": f"No handler for method '{name}'."})


def _check_rule(rule: object) -> MethodRule:
    if not isinstance(rule, MethodRule):
        raise InvalidSettings(f"Not a method rule: {rule!r}.")
    return rule


@dataclass
class MethodTable:
    """Rules by method name; ``fallback`` (None: 404 with a message) for the rest.

    Everything set here is checked: a rule is a ``MethodRule`` (whose mode is a ``Mode``),
    a name is non-empty text.
    """

    rules: dict[str, MethodRule] = field(default_factory=dict)
    fallback: MethodRule | None = None
    ask_timeout: float = DEFAULT_ASK_TIMEOUT

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "fallback" and value is not None:
            value = _check_rule(value)
        elif name == "rules":
            value = {_check_name(k): _check_rule(v) for k, v in dict(value).items()}
        super().__setattr__(name, value)

    def rule_for(self, name: str) -> MethodRule:
        rule = self.rules.get(name)
        if rule is not None:
            return rule
        return self.fallback if self.fallback is not None else unknown_method_rule(name)

    def set(self, name: str, rule: MethodRule) -> None:
        self.rules[_check_name(name)] = _check_rule(rule)

    def remove(self, name: str) -> None:
        self.rules.pop(name, None)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidSettings("A method rule needs the method's name.")
    return name.strip()


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
    return check_status(status)


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
        self.future.set_result((check_status(status), check_payload(payload)))
        return True
