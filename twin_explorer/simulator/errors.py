"""What can go wrong with a simulated module, in plain words.

``azure.iot.device`` exceptions never leave this package: ``translate`` turns them into a
:class:`SimulatorError` whose ``text`` says what happened and what to do (reference A.4
for how the SDK maps CONNACK codes and TLS failures onto its exceptions).
"""

from __future__ import annotations

from twin_explorer.connection.redact import redact


class SimulatorError(Exception):
    """Base class. ``str()`` and ``text`` are a sentence fit for a status line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = redact(message)
        self.hint = hint
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class InvalidSettings(SimulatorError):
    """A connection string, CA, proxy, template or method spec that cannot be used."""


class Unauthorized(SimulatorError):
    """The hub refused the identity's credentials (CONNACK 4/5): no retry helps."""


class Untrusted(SimulatorError):
    """TLS failed: the hub's certificate is not trusted by this client."""


class Unreachable(SimulatorError):
    """No connection: refused, dropped, DNS, proxy. The SDK retries these."""


class NotConnected(SimulatorError):
    """An operation that needs the connection was asked for while there is none."""


class TimedOut(SimulatorError):
    """The hub did not answer in time."""


class InvalidPatch(SimulatorError):
    """A reported patch that breaks the twin rules; ``issues`` lists them."""

    def __init__(self, message: str, issues: list | None = None) -> None:
        super().__init__(message)
        self.issues = list(issues or [])


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


# Background exceptions are the pipeline's own classes (transport_exceptions,
# pipeline_exceptions), not the public ones, so errors are recognised by class name.
_RETRIED = {
    "OperationCancelled",
    "OperationTimeout",
    "OperationError",
    "ConnectionFailedError",
    "ConnectionDroppedError",
    "TlsExchangeAuthError",
}


def _is_proxy_error(exc: BaseException) -> bool:
    return type(exc).__module__ == "socks"


def _innermost(chain: list[BaseException]) -> str:
    """The most specific message in a cause chain (the SDK's outer ones are generic)."""
    for exc in reversed(chain):
        text = str(exc).strip()
        if text:
            return text
    return ""


def sdk_retries(exc: BaseException) -> bool:
    """Whether the SDK keeps trying to reconnect after this failed attempt (A.4, A.12)."""
    return type(exc).__name__ in _RETRIED


def translate(exc: BaseException) -> SimulatorError:
    """One SimulatorError for any exception the device SDK raises or reports."""
    if isinstance(exc, SimulatorError):
        return exc
    chain = _cause_chain(exc)
    names = {type(e).__name__ for e in chain}
    detail = str(exc).strip()
    if names & {"TlsExchangeAuthError", "SSLCertVerificationError"}:
        return Untrusted(
            "The hub's TLS certificate is not trusted.",
            hint="For a local hub, give its CA certificate; for Azure, check the system "
            "certificate store.",
        )
    if names & {"CredentialError", "UnauthorizedError"}:
        return Unauthorized(
            "The hub refused the credentials (wrong key, unknown or disabled identity).",
            hint="Check the connection string; the SDK does not retry this.",
        )
    if names & {"OperationTimeout", "TimeoutError"}:
        return TimedOut("The hub did not answer in time.")
    if "ProtocolProxyError" in names or any(_is_proxy_error(e) for e in chain):
        return Unreachable(
            f"Could not reach the hub through the proxy ({_innermost(chain) or 'no detail'}).",
            hint="Is the proxy (and the hub behind it) running?",
        )
    if "ConnectionDroppedError" in names:
        return Unreachable(f"The connection dropped ({detail or 'no reason given'}).")
    if names & {"ConnectionFailedError", "NoConnectionError", "ProtocolProxyError"} or any(
        isinstance(e, ConnectionError | OSError) for e in chain
    ):
        return Unreachable(
            f"Could not connect to the hub ({_innermost(chain) or type(exc).__name__}).",
            hint="Is the hub running and reachable (host, port 8883, proxy)?",
        )
    if "OperationCancelled" in names:
        return Unreachable("The operation was cancelled because the connection closed.")
    cause = chain[1] if len(chain) > 1 else None
    if cause is not None:
        detail = f"{detail}: {type(cause).__name__}: {cause}" if detail else str(cause)
    return SimulatorError(f"The device SDK failed ({detail or type(exc).__name__}).")
