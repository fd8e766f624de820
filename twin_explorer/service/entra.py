"""Microsoft Entra ID sign-in for a hub: which credential, where its tokens are cached,
and what a refusal means.

A hub profile of this kind holds no secret: the host name, the credential choice and,
once signed in, azure-identity's ``AuthenticationRecord`` (account, tenant, ids; no
token). Tokens live in azure-identity's persistent token cache, which is backed by the
OS: DPAPI on Windows, the Keychain on macOS, the Secret Service (libsecret, through
PyGObject) on Linux. Where that is not available the tokens stay in memory for the
session and the app says so; a plain-file cache (``allow_unencrypted_storage``) is never
used. The refresh token in that cache is what lets the app start again without asking.

The service SDK's token path is ``IoTHubRegistryManager.from_token_credential`` (scope
``https://iothubs.azure.net/.default``); every call of :class:`HubService` (registry,
twins, queries, direct methods, statistics) is a REST call on it. Device and module
connection strings still come from the identities' own keys, read from the registry.
The hub's own connection string does not exist here: there is no key to put in one.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twin_explorer.connection.session_bus import survive_bus_loss
from twin_explorer.localhub.core.roles import Permission, roles_granting

IOTHUB_SCOPE = "https://iothubs.azure.net/.default"
CACHE_NAME = "twin-explorer"

CREDENTIALS: dict[str, str] = {
    "browser": "Interactive browser sign-in",
    "device_code": "Device code (for a machine without a browser)",
    "default": "DefaultAzureCredential (environment, managed identity, Azure CLI, …)",
}

Prompt = Callable[[str, str, datetime], None]  # verification URL, user code, expiry

# libsecret's synchronous calls are not safe from several threads at once (GLib aborts a
# task twice, and azure-identity then reports "cache encryption is impossible"); the
# service's workers all ask for tokens, so every use of the cache takes this lock.
_KEYRING = threading.Lock()


@dataclass(frozen=True)
class EntraSettings:
    """What an Entra ID hub profile says (nothing secret)."""

    host: str  # the hub's host name, port included for a local hub
    credential: str = "browser"  # a key of CREDENTIALS
    tenant_id: str | None = None
    authority: str | None = None  # https://host[:port] of a non-public cloud or local hub
    ca_cert: str | None = None  # a CA to trust for the hub and the authority (local hub)
    record: str | None = None  # AuthenticationRecord.serialize() after a sign-in


@dataclass(frozen=True)
class Account:
    """Who is signed in, as the window shows it."""

    username: str
    tenant_id: str


def cache_problem() -> str | None:
    """Why tokens cannot be kept in the OS's protected store, or None when they can.

    Linux needs libsecret through PyGObject and a running Secret Service; msal's own trial
    (write, read back) tells. Windows and macOS always have their store.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        from msal_extensions.libsecret import trial_run

        with _KEYRING:
            trial_run()
            survive_bus_loss()
    except ImportError:
        return "libsecret (PyGObject) is not installed"
    except Exception as exc:  # no Secret Service on the session bus, locked, …
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"the system keyring is not available ({text})"
    return None


def make_credential(
    settings: EntraSettings, *, prompt: Prompt | None = None, persistent: bool = True
) -> Any:
    """The azure-identity credential for ``settings``; tokens cached in the OS store when
    ``persistent`` (see :func:`cache_problem`), else in memory for this session."""
    from azure.identity import (
        AuthenticationRecord,
        DefaultAzureCredential,
        DeviceCodeCredential,
        InteractiveBrowserCredential,
        TokenCachePersistenceOptions,
    )

    common: dict[str, Any] = {}
    if settings.authority:
        # A sovereign cloud or the local hub: msal must not ask login.microsoftonline.com
        # whether it knows this authority.
        common["authority"] = settings.authority
        common["disable_instance_discovery"] = True
    if settings.ca_cert:
        common["connection_verify"] = settings.ca_cert
    if settings.credential == "default":
        if settings.tenant_id:
            common["additionally_allowed_tenants"] = [settings.tenant_id]
        return DefaultAzureCredential(**common)
    if settings.tenant_id:
        common["tenant_id"] = settings.tenant_id
    if persistent:
        common["cache_persistence_options"] = TokenCachePersistenceOptions(name=CACHE_NAME)
    if settings.record:
        # Signed in before: tokens come from the cache (refreshed silently); a prompt
        # would only come from the Sign In button, never from a background call.
        common["authentication_record"] = _record(AuthenticationRecord, settings.record)
        common["disable_automatic_authentication"] = True
        # The record names its authority and tenant; azure-identity takes them from it.
        common.pop("authority", None)
        common.pop("tenant_id", None)
    if settings.credential == "device_code":
        return DeviceCodeCredential(prompt_callback=prompt, timeout=300, **common)
    if settings.credential == "browser":
        return InteractiveBrowserCredential(timeout=300, **common)
    raise ValueError(f"unknown credential kind {settings.credential!r}")


def _record(cls: Any, text: str) -> Any:
    """The saved record. Its authority is a bare ``host[:port]``, which azure-identity
    reads back as a URL scheme when it has a port (a local hub): say https outright."""
    record = cls.deserialize(text)
    if "://" not in record.authority and ":" in record.authority:
        record = cls(
            record.tenant_id,
            record.client_id,
            "https://" + record.authority,
            record.home_account_id,
            record.username,
        )
    return record


def sign_in(credential: Any) -> tuple[str | None, Account | None]:
    """Sign in now (blocking: run it off the UI thread). Returns the record to keep and
    the account; DefaultAzureCredential has no record (None), its account is read from
    the token it got."""
    if hasattr(credential, "authenticate"):
        with _KEYRING:
            record = credential.authenticate(scopes=[IOTHUB_SCOPE])
        return record.serialize(), Account(record.username, record.tenant_id)
    with _KEYRING:
        token = credential.get_token(IOTHUB_SCOPE)
    return None, account_in_token(token.token)


def account_in_token(token: str) -> Account | None:
    """Who an access token names (read, not verified: for display only)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    name = claims.get("upn") or claims.get("preferred_username") or claims.get("app_displayname")
    return Account(str(name or claims.get("oid", "?")), str(claims.get("tid", "?")))


class SerialCredential:
    """A token credential whose calls take turns (see ``_KEYRING``); what azure-core and
    the service SDK call of a credential, passed through."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        with _KEYRING:
            return self._credential.get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        with _KEYRING:
            return self._credential.get_token_info(*scopes, **kwargs)

    def close(self) -> None:
        self._credential.close()


def account_of(record: str | None) -> Account | None:
    if not record:
        return None
    from azure.identity import AuthenticationRecord

    parsed = AuthenticationRecord.deserialize(record)
    return Account(parsed.username, parsed.tenant_id)


# -- what a refusal means --------------------------------------------------------------

_REFUSED = re.compile(r"is not authorized for (\w+) on (\S+)")


def permission_for(method: str, path: str) -> Permission:
    """The data action IoT Hub needs for a REST call (its permissions table)."""
    method = method.upper()
    parts = [part for part in path.split("?", 1)[0].split("/") if part]
    head = parts[0] if parts else ""
    if head == "twins":
        if parts[-1] == "methods":
            return Permission.DIRECT_METHODS
        return Permission.TWINS_READ if method == "GET" else Permission.TWINS_WRITE
    if head == "devices":
        if parts[-1] == "query":
            return Permission.TWINS_READ
        if "messages" in parts:
            return Permission.C2D_SEND
        if method == "GET":
            return Permission.DEVICES_READ
        return Permission.DEVICES_DELETE if method == "DELETE" else Permission.DEVICES_WRITE
    if head == "statistics":
        return Permission.STATISTICS_READ
    return Permission.DEVICES_READ


def role_hint(reply_text: str) -> str | None:
    """For IoT Hub's RBAC refusal ("Principal … is not authorized for GET on /twins/d
    due to no assigned permissions"): the roles that allow it and how to grant one."""
    found = _REFUSED.search(reply_text)
    if found is None:
        return None
    roles = roles_granting(permission_for(found.group(1), found.group(2)))
    wanted = " or ".join(roles)
    return (
        f"Your account needs the {wanted} role on this hub. Someone who manages the hub "
        "grants it in the Azure portal (the hub → Access control (IAM) → Add role "
        f'assignment), or with: az role assignment create --role "{roles[0]}" '
        "--assignee <your account> --scope <the hub's resource id>. On a local hub: "
        f'twin-explorer hub roles assign <principal> "{roles[0]}".'
    )


def token_hint(reply_text: str) -> str | None:
    """For a token the hub did not accept (expired, wrong audience, …)."""
    if "access token" not in reply_text.lower():
        return None
    return "The hub did not accept the sign-in token. Sign in again (Connections → Sign In)."


# -- from a saved profile to a service -------------------------------------------------

SETTINGS_FIELDS = ("credential", "tenant_id", "authority", "ca_cert", "record")


def settings_of(host: str, fields: dict[str, str]) -> EntraSettings:
    return EntraSettings(host, **{k: fields[k] for k in SETTINGS_FIELDS if fields.get(k)})


def fields_of(settings: EntraSettings) -> dict[str, str]:
    """What a profile keeps (no secret: see the module docstring)."""
    values = {k: getattr(settings, k) for k in SETTINGS_FIELDS}
    return {k: v for k, v in values.items() if v}


def open_service(settings: EntraSettings) -> tuple[Any, str | None]:
    """(HubService, why tokens are kept for this session only, or None). Blocking (it
    asks the keyring whether it works): run it off the UI thread."""
    from twin_explorer.service.hub import HubService
    from twin_explorer.service.local_hub import local_trust

    problem = None if settings.credential == "default" else cache_problem()
    credential = SerialCredential(make_credential(settings, persistent=problem is None))
    ca_cert, use_env_proxies = local_trust(settings.host)
    service = HubService.from_credential(
        settings.host,
        credential,
        ca_cert=settings.ca_cert or ca_cert,
        use_env_proxies=use_env_proxies,
    )
    return service, problem
