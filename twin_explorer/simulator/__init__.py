"""Simulated modules: identities the app runs itself over ``azure.iot.device.aio``.

Qt-free: state and events for a panel or the headless ``twin-explorer simulate``.
"""

from __future__ import annotations

from twin_explorer.simulator.behaviour import ACK_CHOICES, Behaviour
from twin_explorer.simulator.errors import (
    InvalidPatch,
    InvalidSettings,
    NotConnected,
    SimulatorError,
    TimedOut,
    Unauthorized,
    Unreachable,
    Untrusted,
)
from twin_explorer.simulator.events import Counters, EventKind, ModuleEvent, Status
from twin_explorer.simulator.inbox import InboxMode, MessageState, Outcome, ReceivedMessage
from twin_explorer.simulator.methods import MethodRule, MethodTable, Mode, PendingMethod
from twin_explorer.simulator.module import SimulatedModule
from twin_explorer.simulator.telemetry import TelemetryTemplate
from twin_explorer.simulator.transport import Transport, parse_proxy, read_ca

__all__ = [
    "ACK_CHOICES",
    "Behaviour",
    "Counters",
    "EventKind",
    "InboxMode",
    "InvalidPatch",
    "InvalidSettings",
    "MessageState",
    "MethodRule",
    "MethodTable",
    "Mode",
    "ModuleEvent",
    "NotConnected",
    "Outcome",
    "PendingMethod",
    "ReceivedMessage",
    "SimulatedModule",
    "SimulatorError",
    "Status",
    "TelemetryTemplate",
    "TimedOut",
    "Transport",
    "Unauthorized",
    "Unreachable",
    "Untrusted",
    "parse_proxy",
    "read_ca",
]
