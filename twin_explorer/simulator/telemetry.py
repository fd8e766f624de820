"""Telemetry messages from a JSON template with placeholders (pure: no I/O).

Placeholders, inside JSON strings:

* ``{{counter}}``: the message number in the stream, from 1;
* ``{{time}}``: the send time, UTC ISO 8601 (as IoT Hub writes times);
* ``{{random:MIN:MAX}}``: a random number in [MIN, MAX]; whole numbers when both bounds
  are written without a decimal point, else rounded to two decimals.

A string that is exactly one placeholder becomes that value with its JSON type
(``"{{counter}}"`` -> ``7``); a placeholder inside longer text is replaced by its text.
Message properties are text and take the same placeholders.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin_explorer.simulator.errors import InvalidSettings
from twin_explorer.twin.clock import utc_now

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NUMBER = r"-?\d+(?:\.\d+)?"
_RANDOM = re.compile(rf"random:({_NUMBER}):({_NUMBER})")

Value = Callable[["Context"], Any]


@dataclass(frozen=True)
class Context:
    counter: int
    time: str
    rng: random.Random


def _compile(name: str) -> Value:
    if name == "counter":
        return lambda ctx: ctx.counter
    if name == "time":
        return lambda ctx: ctx.time
    match = _RANDOM.fullmatch(name)
    if match:
        low_text, high_text = match.groups()
        if "." not in low_text and "." not in high_text:
            low, high = int(low_text), int(high_text)
            if low > high:
                raise InvalidSettings(f"In {{{{{name}}}}} the minimum is above the maximum.")
            return lambda ctx: ctx.rng.randint(low, high)
        lo, hi = float(low_text), float(high_text)
        if lo > hi:
            raise InvalidSettings(f"In {{{{{name}}}}} the minimum is above the maximum.")
        return lambda ctx: round(ctx.rng.uniform(lo, hi), 2)
    raise InvalidSettings(
        f"Unknown placeholder {{{{{name}}}}}; use {{{{counter}}}}, {{{{time}}}} or "
        "{{random:MIN:MAX}}."
    )


@dataclass(frozen=True)
class _Text:
    """A string with placeholders, split into literal parts and values."""

    parts: tuple[str | Value, ...]

    @classmethod
    def parse(cls, text: str) -> _Text | str:
        parts: list[str | Value] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            parts.append(_compile(match.group(1)))
            pos = match.end()
        if not any(callable(p) for p in parts):
            return text
        if pos < len(text):
            parts.append(text[pos:])
        return cls(tuple(parts))

    def render(self, ctx: Context) -> Any:
        if len(self.parts) == 1 and callable(self.parts[0]):
            return self.parts[0](ctx)  # keeps the value's JSON type
        return "".join(p if isinstance(p, str) else _as_text(p(ctx)) for p in self.parts)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _compile_value(value: Any) -> Any:
    if isinstance(value, str):
        return _Text.parse(value)
    if isinstance(value, dict):
        return {_Text.parse(k) if "{{" in k else k: _compile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_value(v) for v in value]
    return value


def _render_value(value: Any, ctx: Context) -> Any:
    if isinstance(value, _Text):
        return value.render(ctx)
    if isinstance(value, dict):
        return {
            (_as_text(k.render(ctx)) if isinstance(k, _Text) else k): _render_value(v, ctx)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_render_value(v, ctx) for v in value]
    return value


@dataclass(frozen=True)
class Message:
    body: str  # JSON text, sent as UTF-8
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TelemetryTemplate:
    """A parsed template; ``render`` makes one message."""

    source: str
    _body: Any
    _properties: dict[str, Any]

    @classmethod
    def parse(cls, text: str, properties: dict[str, str] | None = None) -> TelemetryTemplate:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise InvalidSettings(f"The telemetry template is not JSON: {exc}.") from None
        props = {}
        for key, value in (properties or {}).items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise InvalidSettings("Message properties are names with text values.")
            props[key] = _Text.parse(value)
        return cls(text, _compile_value(body), props)

    def render(
        self, counter: int, *, time: str | None = None, rng: random.Random | None = None
    ) -> Message:
        ctx = Context(counter, time or utc_now(), rng or random.Random())
        body = json.dumps(_render_value(self._body, ctx), ensure_ascii=False)
        props = {k: _as_text(_render_value(v, ctx)) for k, v in self._properties.items()}
        return Message(body, props)


def parse_properties(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` items (the headless command's --property) -> a dict."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise InvalidSettings(f"Not a message property: {item!r}; use NAME=VALUE.")
        out[name.strip()] = value
    return out
