"""SDK exceptions -> ServiceError, with the hub, the identity and what to do."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from azure.core.exceptions import ClientAuthenticationError
from msrest.exceptions import ClientRequestError, HttpOperationError

from twin_explorer.connection.redact import redact
from twin_explorer.service import errors as e
from twin_explorer.service.entra import role_hint, token_hint


@dataclass(frozen=True)
class Context:
    hub: str
    action: str  # "read the twin", "create the device", …
    identity: str | None = None  # "device 'd1'" or "module 'd1/m1'"
    policy: str | None = None


def identity_label(device_id: str | None, module_id: str | None = None) -> str | None:
    if device_id is None:
        return None
    return f"module '{device_id}/{module_id}'" if module_id else f"device '{device_id}'"


def translate(exc: BaseException, ctx: Context) -> e.ServiceError:
    if isinstance(exc, e.ServiceError):
        return exc
    if isinstance(exc, HttpOperationError) and exc.response is not None:
        response = exc.response
        reply = e.parse_error_body(
            response.status_code, dict(response.headers), response.text or ""
        )
        error = _from_reply(reply, ctx)
        if isinstance(error, e.Throttled):
            error.retry_after = _seconds(response.headers.get("Retry-After"))
        return error
    if isinstance(exc, ClientRequestError | requests.RequestException | OSError):
        return _unreachable(exc, ctx)
    if isinstance(exc, ClientAuthenticationError):  # azure-identity: no token to be had
        return e.Unauthorized(
            f"Signing in to {ctx.hub} did not work, so Twin Explorer could not {ctx.action}.",
            hint="Sign in again (Connections → Edit → Sign In). "
            + (redact(str(exc)).splitlines() or [""])[0],
            hub=ctx.hub,
            identity=ctx.identity,
            detail=redact(str(exc)),
        )
    return e.ServiceError(
        f"Could not {ctx.action} on {ctx.hub}: {type(exc).__name__}.",
        hub=ctx.hub,
        identity=ctx.identity,
        detail=str(exc),
    )


def _seconds(header: str | None) -> float | None:
    """A Retry-After given in seconds (the HTTP-date form is not used by IoT Hub)."""
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def _unreachable(exc: BaseException, ctx: Context) -> e.Unreachable:
    text = str(exc)
    lowered = text.lower()
    if "certificate" in lowered or "ssl" in lowered:
        hint = (
            "The hub's TLS certificate is not trusted. For the local hub, use the connection "
            "Twin Explorer created for it; for Azure, check the system's CA certificates."
        )
    elif (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or ("getaddrinfo" in lowered)
    ):
        hint = "The host name does not resolve. Check the HostName in the connection string."
    elif "refused" in lowered:
        hint = "Nothing is listening there. Is the hub running, and is the port right?"
    elif "timed out" in lowered or "timeout" in lowered:
        hint = "The hub did not answer in time. Check the network and try again."
    else:
        hint = "Check the network connection and the HostName, then try again."
    return e.Unreachable(
        f"The hub {ctx.hub} is unreachable, so Twin Explorer could not {ctx.action}.",
        hub=ctx.hub,
        identity=ctx.identity,
        hint=hint,
        detail=text,
    )


def _from_reply(reply: e.HubReply, ctx: Context) -> e.ServiceError:
    who = ctx.identity or "it"
    common = {
        "hub": ctx.hub,
        "identity": ctx.identity,
        "detail": reply.text,
        "status": reply.status,
        "error_code": reply.error_code,
    }
    code = reply.error_code or ""
    status = reply.status
    if status == 404 and (reply.numeric == 404103 or code == "DeviceNotOnline"):
        return e.DeviceOffline(
            f"The {who} is not connected to {ctx.hub}, so the method could not be delivered.",
            hint="Start the device or module (or simulate it), then try again.",
            **common,
        )
    if status == 504:
        return e.MethodTimeout(
            f"The {who} did not answer in time.",
            hint="Give it a longer response timeout, or check that it handles this method.",
            **common,
        )
    if status == 404:
        what = ctx.identity or "The identity"
        return e.NotFound(
            f"{_cap(what)} was not found on {ctx.hub}.",
            hint="It may have been deleted; refresh the tree.",
            **common,
        )
    if status == 409:
        return e.AlreadyExists(
            f"{_cap(who)} already exists on {ctx.hub}.", hint="Choose another id.", **common
        )
    if status == 412:
        return e.PreconditionFailed(
            f"Someone else changed the {who} on {ctx.hub} since you loaded it.",
            hint="Reload to see their change, then apply yours again.",
            **common,
        )
    if status in (401, 403):
        lowered = reply.text.lower()
        entra = role_hint(reply.text) or token_hint(reply.text)
        if entra:
            hint = entra
        elif "lacks" in lowered or "permission" in lowered or "right" in lowered:
            hint = (
                f"The policy '{ctx.policy or '?'}' lacks the permission this needs. Use a "
                "connection with a policy that has it (for example iothubowner)."
            )
        else:
            hint = (
                "The hub refused the credentials: check the connection string's key and "
                "policy name, and that the key was not regenerated."
            )
        return e.Unauthorized(
            f"{ctx.hub} did not allow Twin Explorer to {ctx.action}.", hint=hint, **common
        )
    if status == 413:
        return e.QuotaExceeded(f"Could not {ctx.action}: {reply.text}", **common)
    if status == 429:
        return e.Throttled(
            f"{ctx.hub} is throttling requests.",
            hint="Wait a few seconds and try again.",
            **common,
        )
    if status == 400:
        cls = e.InvalidTwin if "twin" in ctx.action else e.InvalidRequest
        return cls(f"{ctx.hub} rejected the request to {ctx.action}: {reply.text}", **common)
    if status == 507 or code == "InsufficientStorage":
        # The hub's own sentence names the disk and its data folder.
        kept = "your edit is kept" if "twin" in ctx.action else "nothing was lost"
        return e.DiskFull(
            f"{reply.text.rstrip('.')}: free some space; {kept}.",
            hint="Try again once there is room: the hub goes on serving reads meanwhile.",
            **common,
        )
    if status >= 500:
        return e.HubFailure(
            f"{ctx.hub} failed while trying to {ctx.action} (HTTP {status}).",
            hint="Try again; if it keeps failing, check the hub's health.",
            **common,
        )
    return e.ServiceError(
        f"Could not {ctx.action} on {ctx.hub}: HTTP {status} {reply.text}", **common
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
