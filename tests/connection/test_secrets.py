from __future__ import annotations

import keyring
import keyring.errors
import pytest
from keyring.backends import chainer, fail, null

from tests.connection.keyrings import LockedKeyring, MemoryKeyring, RefusingKeyring
from twin_explorer.connection.secrets import (
    SERVICE_NAME,
    SecretStore,
    SecretStoreError,
    SessionSecretStore,
)

SECRET = "HostName=h;SharedAccessKeyName=p;SharedAccessKey=c2VjcmV0LXZhbHVlLWZvci10ZXN0cw=="


def test_round_trip_through_the_installed_keyring(memory_keyring):
    store = SecretStore()
    assert store.get("hub") is None
    store.set("hub", SECRET)
    assert memory_keyring.passwords == {(SERVICE_NAME, "hub"): SECRET}
    assert keyring.get_password("twin-explorer", "hub") == SECRET
    assert store.get("hub") == SECRET
    store.delete("hub")
    assert store.get("hub") is None
    store.delete("hub")  # already gone: not an error


def test_usable_names_the_backend(memory_keyring):
    ok, reason = SecretStore().usable()
    assert ok
    assert "MemoryKeyring" in reason


class _EmptyChainer(chainer.ChainerBackend):
    backends = ()  # what ChainerBackend looks like with no viable keyring


class _RaisingKeyring(MemoryKeyring):
    def get_password(self, service, username):
        raise RuntimeError("dbus went away")

    def set_password(self, service, username, password):
        raise RuntimeError("dbus went away")


class _UnlockDismissedKeyring(MemoryKeyring):
    """What keyring's Secret Service backend raises when nobody can answer its unlock prompt."""

    def _fail(self):
        from secretstorage.exceptions import PromptDismissedException

        try:
            raise PromptDismissedException("Prompt dismissed.")
        except PromptDismissedException as exc:
            raise keyring.errors.InitError(f"Failed to create the collection: {exc}.") from exc

    def get_password(self, service, username):
        self._fail()

    def set_password(self, service, username, password):
        self._fail()


_UNLOCK = "unlock it in your desktop's Passwords and Keys app"
_UNUSABLE = [
    (fail.Keyring(), "no system keyring is available on this machine"),
    (_EmptyChainer(), "no system keyring is available on this machine"),
    (null.Keyring(), "null backend"),
    (LockedKeyring(), _UNLOCK),
    (_UnlockDismissedKeyring(), _UNLOCK),
    (_RaisingKeyring(), "the system keyring failed while trying to"),
]


@pytest.mark.parametrize(("backend", "reason"), _UNUSABLE)
def test_unusable_backends_give_plain_reasons(use_keyring, backend, reason):
    use_keyring(backend)
    ok, message = SecretStore().usable()
    assert not ok
    assert reason in message


@pytest.mark.parametrize(
    ("backend", "message"),
    [*_UNUSABLE, (RefusingKeyring(), "the system keyring refused to save the connection string")],
)
def test_set_failures_become_one_plain_error_without_the_secret(use_keyring, backend, message):
    use_keyring(backend)
    with pytest.raises(SecretStoreError) as info:
        SecretStore().set("hub", SECRET)
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    assert "SharedAccessKey" not in str(info.value)


def test_other_keyring_errors_are_translated(use_keyring):
    class Broken(MemoryKeyring):
        def get_password(self, service, username):
            raise keyring.errors.InitError("cannot open")

        def delete_password(self, service, username):
            raise keyring.errors.PasswordDeleteError("no")

    use_keyring(Broken())
    store = SecretStore()
    with pytest.raises(SecretStoreError, match="could not be opened"):
        store.get("hub")
    with pytest.raises(SecretStoreError, match="could not be opened"):
        store.delete("hub")


def test_delete_refused(use_keyring):
    class NoDelete(MemoryKeyring):
        def delete_password(self, service, username):
            raise keyring.errors.PasswordDeleteError("no")

    backend = use_keyring(NoDelete())
    backend.passwords[(SERVICE_NAME, "hub")] = SECRET
    with pytest.raises(SecretStoreError, match="refused to delete"):
        SecretStore().delete("hub")


def test_pinned_backend_ignores_the_global_keyring(use_keyring):
    use_keyring(fail.Keyring())
    pinned = MemoryKeyring()
    store = SecretStore(backend=pinned, service="other-app")
    store.set("hub", SECRET)
    assert pinned.passwords == {("other-app", "hub"): SECRET}


def test_session_store_keeps_secrets_in_memory_only(use_keyring):
    use_keyring(fail.Keyring())  # proves nothing reaches a keyring
    store = SessionSecretStore()
    assert store.usable()[0]
    store.set("hub", SECRET)
    assert store.get("hub") == SECRET
    assert SECRET not in repr(store)
    store.delete("hub")
    store.delete("hub")
    assert store.get("hub") is None
