"""Where connection strings live: the OS keyring, or memory for this session only.

There is no file fallback, ever: if the keyring cannot take a secret the user is told in
plain words and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import chainer, fail, null

SERVICE_NAME = "twin-explorer"

NO_KEYRING = "no system keyring is available on this machine"
LOCKED = (
    "your system keyring is locked: unlock it in your desktop's Passwords and Keys app "
    "(or log out and log in again), then try again"
)
# secretstorage's names for a locked keyring or an unlock prompt nobody could answer
_LOCKED_NAMES = {"LockedException", "PromptDismissedException"}


class SecretStoreError(Exception):
    """The secret store failed; the message is plain words for the user."""


class SecretBackend(Protocol):
    """What profiles need from a secret store."""

    def get(self, name: str) -> str | None: ...
    def set(self, name: str, secret: str) -> None: ...
    def delete(self, name: str) -> None: ...
    def usable(self) -> tuple[bool, str]: ...


def _locked(exc: BaseException) -> bool:
    """Locked, directly or underneath (keyring reports a failed unlock as an InitError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, keyring.errors.KeyringLocked):
            return True
        if type(seen).__name__ in _LOCKED_NAMES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _message(exc: BaseException, action: str) -> str:
    if _locked(exc):
        return LOCKED
    if isinstance(exc, keyring.errors.NoKeyringError):
        return NO_KEYRING
    if isinstance(exc, keyring.errors.InitError):
        return "the system keyring could not be opened"
    if isinstance(exc, keyring.errors.PasswordSetError):
        return "the system keyring refused to save the connection string"
    if isinstance(exc, keyring.errors.PasswordDeleteError):
        return "the system keyring refused to delete the connection string"
    # The exception's own text is not shown: a backend may echo what it was given.
    return f"the system keyring failed while trying to {action} ({type(exc).__name__})"


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except SecretStoreError:
        raise
    except Exception as exc:
        raise SecretStoreError(_message(exc, action)) from exc


class SecretStore:
    """Secrets in the OS keyring under service "twin-explorer", username = profile name.

    ``backend`` pins a keyring backend; by default the one keyring currently selects is
    looked up at every call, so keyring.set_keyring() takes effect at once.
    """

    def __init__(
        self,
        service: str = SERVICE_NAME,
        backend: keyring.backend.KeyringBackend | None = None,
    ) -> None:
        self.service = service
        self._backend = backend

    def _keyring(self) -> keyring.backend.KeyringBackend:
        return self._backend if self._backend is not None else keyring.get_keyring()

    def get(self, name: str) -> str | None:
        with _translated("read the connection string"):
            return self._keyring().get_password(self.service, name)

    def set(self, name: str, secret: str) -> None:
        ok, reason = self._viable()
        if not ok:
            raise SecretStoreError(reason)
        with _translated("save the connection string"):
            self._keyring().set_password(self.service, name, secret)

    def delete(self, name: str) -> None:
        """Remove the secret; a secret that is already gone is not an error."""
        with _translated("delete the connection string"):
            backend = self._keyring()
            if backend.get_password(self.service, name) is None:
                return
            backend.delete_password(self.service, name)

    def _viable(self) -> tuple[bool, str]:
        backend = self._keyring()
        if isinstance(backend, fail.Keyring):
            return False, NO_KEYRING
        if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
            return False, NO_KEYRING
        if isinstance(backend, null.Keyring):
            return False, "the keyring is switched off (null backend), so nothing can be saved"
        return True, f"connection strings are kept in {backend_name(backend)}"

    def usable(self) -> tuple[bool, str]:
        """(True, where secrets go) or (False, a plain reason). Probes the backend once."""
        try:
            ok, reason = self._viable()
            if ok:
                with _translated("check the keyring"):
                    self._keyring().get_password(self.service, "__probe__")
        except SecretStoreError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, _message(exc, "check the keyring")
        return ok, reason


class SessionSecretStore:
    """Secrets held in memory only: "use for this session only"."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self._secrets.get(name)

    def set(self, name: str, secret: str) -> None:
        self._secrets[name] = secret

    def delete(self, name: str) -> None:
        self._secrets.pop(name, None)

    def usable(self) -> tuple[bool, str]:
        return True, "connection strings are kept in memory until the app closes"

    def __repr__(self) -> str:
        return f"SessionSecretStore(names={sorted(self._secrets)!r})"


def backend_name(backend: keyring.backend.KeyringBackend) -> str:
    """Where secrets go, by name. With PyGObject installed (the Linux token cache needs
    it) keyring chains its libsecret backend behind SecretService, the same store: name
    the chain's first, which takes every write."""
    if isinstance(backend, chainer.ChainerBackend) and backend.backends:
        return backend.backends[0].name
    return backend.name
