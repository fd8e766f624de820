"""Saved hub connections: names and hosts in connections.json, secrets in the keyring.

connections.json holds only what is safe to read over someone's shoulder (name, host,
policy, when last used). The connection string itself goes to a SecretBackend under the
profile's name. Session-only profiles never touch the disk: their metadata and secret
live in this ProfileManager and vanish with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from twin_explorer import paths
from twin_explorer.connection.secrets import (
    SecretBackend,
    SecretStore,
    SecretStoreError,
    SessionSecretStore,
)
from twin_explorer.connection.strings import ConnectionStringError, parse
from twin_explorer.connection.strings import format as format_cs

FILE_NAME = "connections.json"
FILE_VERSION = 1
MAX_NAME = 100


class ProfileError(ValueError):
    """A profile operation the user asked for cannot be done; plain words."""


class ProfileStorageError(ProfileError):
    """connections.json cannot be read or written: the machine's fault, not the input."""


class UnknownProfile(ProfileError):
    pass


class DuplicateProfile(ProfileError):
    pass


class SecretMissing(ProfileError):
    """The metadata exists but the secret store no longer has the connection string."""


@dataclass(frozen=True)
class Profile:
    name: str
    host: str  # HostName as saved, port included
    policy: str  # SharedAccessKeyName
    last_used: str | None = None  # ISO 8601, UTC
    local: bool = False  # a profile for the embedded local hub
    session_only: bool = False  # secret in memory only; never written to connections.json
    # Microsoft Entra ID sign-in instead of a key: credential kind, tenant, authority,
    # CA and the sign-in record (account and ids, no token). None for a key connection.
    entra: dict[str, str] | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        del data["session_only"]
        if data["entra"] is None:
            del data["entra"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Profile:
        last_used = data.get("last_used")
        return cls(
            name=str(data["name"]),
            host=str(data["host"]),
            policy=str(data["policy"]),
            last_used=str(last_used) if last_used is not None else None,
            local=bool(data.get("local", False)),
            entra=_entra_fields(data.get("entra")),
        )


def _entra_fields(value: object) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items() if v is not None}


def validate_name(name: str) -> str:
    """The stripped name, or ProfileError if it cannot be used as a profile name."""
    stripped = name.strip()
    if not stripped:
        raise ProfileError("the connection name is empty")
    if len(stripped) > MAX_NAME:
        raise ProfileError(f"the connection name is longer than {MAX_NAME} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in stripped):
        raise ProfileError("the connection name contains control characters")
    return stripped


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and os.replace: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _events_key(name: str) -> str:
    return f"{name} · events"


def check_events_connection_string(text: str) -> None:
    """An Event Hub-compatible connection string names its endpoint, key and entity."""
    parts = dict(p.split("=", 1) for p in text.strip().strip(";").split(";") if "=" in p)
    missing = [
        key
        for key in ("Endpoint", "SharedAccessKeyName", "SharedAccessKey", "EntityPath")
        if not parts.get(key)
    ]
    if missing or not parts.get("Endpoint", "").startswith("sb://"):
        raise ConnectionStringError(
            "this is not an Event Hub-compatible connection string: it should read "
            "Endpoint=sb://…/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=… "
            "(Azure portal → your IoT hub → Built-in endpoints)"
        )


class ProfileManager:
    """List, add, use and remove saved hub connections."""

    def __init__(
        self,
        config_dir: Path | str | None = None,
        secrets: SecretBackend | None = None,
    ) -> None:
        self._config_dir = Path(config_dir) if config_dir is not None else None
        self.secrets: SecretBackend = secrets if secrets is not None else SecretStore()
        self.session_secrets = SessionSecretStore()
        self._session: dict[str, Profile] = {}

    @property
    def path(self) -> Path:
        folder = self._config_dir if self._config_dir is not None else paths.config_dir()
        return folder / FILE_NAME

    # -- metadata file ------------------------------------------------------------------

    def _load(self) -> list[Profile]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ProfileStorageError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            items = data["connections"] if isinstance(data, dict) else data
            return [Profile.from_json(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProfileStorageError(f"{self.path} is damaged; fix or delete it") from exc

    def _save(self, profiles: list[Profile]) -> None:
        document = {
            "version": FILE_VERSION,
            "connections": [p.to_json() for p in profiles if not p.session_only],
        }
        try:
            atomic_write(self.path, json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            raise ProfileStorageError(f"cannot write {self.path}: {exc.strerror}") from exc

    # -- queries --------------------------------------------------------------------------

    def list(self) -> list[Profile]:
        """Saved profiles in file order, then this session's."""
        return [*self._load(), *self._session.values()]

    def get(self, name: str) -> Profile:
        for profile in self.list():
            if profile.name == name:
                return profile
        raise UnknownProfile(f"there is no saved connection named '{name}'")

    def _store_for(self, profile: Profile) -> SecretBackend:
        return self.session_secrets if profile.session_only else self.secrets

    def get_connection_string(self, name: str) -> str:
        profile = self.get(name)
        if profile.entra is not None:
            raise ProfileError(f"'{name}' signs in with Microsoft Entra ID; it has no key")
        secret = self._store_for(profile).get(name)
        if secret is None:
            raise SecretMissing(
                f"the connection string for '{name}' is no longer in the system keyring; "
                "remove the connection and add it again"
            )
        return secret

    # -- the built-in endpoint's Event Hub-compatible connection string ------------------

    def get_events_connection_string(self, name: str) -> str | None:
        """The Event Hub-compatible connection string kept for this connection, if any."""
        profile = self.get(name)
        return self._store_for(profile).get(_events_key(name))

    def set_events_connection_string(self, name: str, connection_string: str | None) -> None:
        """Keep (or, with None or "", forget) the built-in endpoint's Event Hub-compatible
        connection string in the keyring beside the service one. Raises
        ConnectionStringError when it is not one."""
        profile = self.get(name)
        store = self._store_for(profile)
        text = (connection_string or "").strip()
        if not text:
            with contextlib.suppress(SecretStoreError):
                store.delete(_events_key(name))
            return
        check_events_connection_string(text)
        store.set(_events_key(name), text)

    # -- changes --------------------------------------------------------------------------

    def _check_free(self, name: str, ignore: str | None = None) -> None:
        folded = name.casefold()
        # Case-insensitive: some keyrings (Windows) treat usernames that way.
        for profile in self.list():
            if profile.name.casefold() == folded and profile.name != ignore:
                raise DuplicateProfile(f"a connection named '{profile.name}' already exists")

    def add(
        self,
        name: str,
        connection_string: str,
        *,
        session_only: bool = False,
        local: bool = False,
    ) -> Profile:
        """Validate and save; the secret is stored before the metadata, so a keyring
        failure leaves nothing behind. Raises ConnectionStringError, ProfileError or
        SecretStoreError."""
        name = validate_name(name)
        cs = parse(connection_string)
        if cs.kind != "service":
            raise ConnectionStringError(
                f"this is a {cs.kind} connection string; a hub connection needs a service "
                "connection string (HostName, SharedAccessKeyName, SharedAccessKey)"
            )
        if cs.shared_access_key_name is None or cs.shared_access_key is None:
            raise ConnectionStringError(
                "a hub connection needs SharedAccessKeyName and SharedAccessKey"
            )
        self._check_free(name)
        profile = Profile(
            name=name,
            host=cs.host_name,
            policy=cs.shared_access_key_name,
            local=local,
            session_only=session_only,
        )
        store = self._store_for(profile)
        store.set(name, format_cs(cs))
        if session_only:
            self._session[name] = profile
            return profile
        try:
            self._save([*self._load(), profile])
        except ProfileError:
            with contextlib.suppress(SecretStoreError):
                store.delete(name)
            raise
        return profile

    def add_entra(self, name: str, host: str, entra: dict[str, str]) -> Profile:
        """Save a Microsoft Entra ID connection: no secret at all (tokens are cached by
        azure-identity in the OS's protected store)."""
        name = validate_name(name)
        if not host.strip():
            raise ProfileError("the hub's host name is empty")
        self._check_free(name)
        profile = Profile(name=name, host=host.strip(), policy="", entra=dict(entra))
        self._save([*self._load(), profile])
        return profile

    def set_entra(self, name: str, entra: dict[str, str]) -> Profile:
        """Replace an Entra ID connection's settings (after a sign-in: its record)."""
        return self._update(name, entra=dict(entra))

    def remove(self, name: str) -> None:
        """Forget the secret, then the metadata. If the keyring refuses, keep both so the
        user can retry instead of leaving an orphaned secret."""
        profile = self.get(name)
        if profile.entra is None:
            self._store_for(profile).delete(name)
        with contextlib.suppress(SecretStoreError):
            self._store_for(profile).delete(_events_key(name))
        if profile.session_only:
            del self._session[name]
        else:
            self._save([p for p in self._load() if p.name != name])

    def touch(self, name: str) -> Profile:
        """Record that the connection was just used."""
        return self._update(name, last_used=_now())

    def rename(self, old: str, new: str) -> Profile:
        new = validate_name(new)
        profile = self.get(old)
        if new == old:
            return profile
        self._check_free(new, ignore=old)
        if profile.entra is not None:  # no secret to move
            return self._update(old, name=new)
        store = self._store_for(profile)
        secret = store.get(old)
        if secret is None:
            raise SecretMissing(f"the connection string for '{old}' is no longer stored")
        store.set(new, secret)
        try:
            renamed = self._update(old, name=new)
        except ProfileError:
            with contextlib.suppress(SecretStoreError):
                store.delete(new)
            raise
        store.delete(old)
        if store.get(new) is None:  # a case-insensitive keyring held one entry for both
            store.set(new, secret)
        events = store.get(_events_key(old))
        if events is not None:
            store.set(_events_key(new), events)
            with contextlib.suppress(SecretStoreError):
                store.delete(_events_key(old))
        return renamed

    def _update(self, current: str, /, **changes: object) -> Profile:
        profile = self.get(current)
        updated = replace(profile, **changes)  # type: ignore[arg-type]
        if profile.session_only:
            del self._session[current]
            self._session[updated.name] = updated
        else:
            self._save([updated if p.name == current else p for p in self._load()])
        return updated
