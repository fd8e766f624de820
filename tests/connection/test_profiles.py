from __future__ import annotations

import base64
import json
from datetime import datetime

import keyring.errors
import pytest

from tests.connection.keyrings import MemoryKeyring, RefusingKeyring, files_containing
from twin_explorer.connection import profiles as profiles_module
from twin_explorer.connection.profiles import (
    DuplicateProfile,
    Profile,
    ProfileError,
    ProfileManager,
    ProfileStorageError,
    SecretMissing,
    UnknownProfile,
)
from twin_explorer.connection.secrets import SERVICE_NAME, SecretStore, SecretStoreError
from twin_explorer.connection.strings import ConnectionStringError

KEY = base64.b64encode(bytes(range(250, 256)) + bytes(range(100, 126))).decode()
CS = f"HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"


def test_add_saves_metadata_to_disk_and_secret_to_keyring(memory_keyring, app_home):
    manager = ProfileManager()
    profile = manager.add("Prod hub", f"  {CS};\n")
    assert profile == Profile(name="Prod hub", host="hub.example", policy="iothubowner")
    assert manager.list() == [profile]
    assert manager.get_connection_string("Prod hub") == CS
    assert memory_keyring.passwords == {(SERVICE_NAME, "Prod hub"): CS}

    assert manager.path == app_home / "config" / "connections.json"
    document = json.loads(manager.path.read_text())
    assert document == {
        "version": 1,
        "connections": [
            {
                "name": "Prod hub",
                "host": "hub.example",
                "policy": "iothubowner",
                "last_used": None,
                "local": False,
            }
        ],
    }


def test_no_file_under_the_app_home_holds_the_key(memory_keyring, app_home):
    manager = ProfileManager()
    manager.add("a", CS)
    manager.add("b", CS.replace("hub.example", "localhost:8443"), local=True)
    manager.touch("a")
    manager.rename("b", "c")
    assert any(app_home.rglob("*"))
    assert files_containing(app_home, KEY) == []
    assert files_containing(app_home, KEY[:20]) == []
    assert files_containing(app_home, "SharedAccessKey") == []


def test_a_new_manager_reads_what_an_earlier_one_saved(memory_keyring):
    ProfileManager().add("hub", CS, local=True)
    again = ProfileManager()
    assert again.get("hub").local is True
    assert again.get_connection_string("hub") == CS


def test_explicit_config_dir(memory_keyring, tmp_path):
    manager = ProfileManager(config_dir=tmp_path / "cfg")
    manager.add("hub", CS)
    assert (tmp_path / "cfg" / "connections.json").exists()


def test_refusing_keyring_stores_nothing(use_keyring, app_home):
    backend = use_keyring(RefusingKeyring())
    manager = ProfileManager()
    with pytest.raises(SecretStoreError) as info:
        manager.add("hub", CS)
    assert str(info.value) == "the system keyring refused to save the connection string"
    assert KEY not in str(info.value)
    assert manager.list() == []
    assert not manager.path.exists()
    assert backend.passwords == {}
    assert files_containing(app_home, KEY[:20]) == []


def test_metadata_write_failure_removes_the_secret_again(memory_keyring, monkeypatch):
    manager = ProfileManager()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(profiles_module.os, "replace", broken_replace)
    with pytest.raises(ProfileStorageError, match="No space left"):
        manager.add("hub", CS)
    assert memory_keyring.passwords == {}
    assert list(manager.path.parent.iterdir()) == []  # the temp file is gone too


def test_failed_write_keeps_the_previous_file(memory_keyring, monkeypatch):
    manager = ProfileManager()
    manager.add("one", CS)
    before = manager.path.read_text()

    def broken_replace(src, dst):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(profiles_module.os, "replace", broken_replace)
    with pytest.raises(ProfileStorageError):
        manager.add("two", CS)
    assert manager.path.read_text() == before
    assert [p.name for p in manager.list()] == ["one"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}", "this is a device connection string"),
        (
            f"HostName=h;DeviceId=d1;ModuleId=m;SharedAccessKey={KEY}",
            "this is a module connection string",
        ),
        ("HostName=h;SharedAccessSignature=SharedAccessSignature sr=h&sig=x&se=1", "needs"),
        (f"HostName=h;SharedAccessKey={KEY}", "needs SharedAccessKeyName"),
        ("nonsense", "has no '='"),
    ],
)
def test_only_service_strings_with_a_key_are_accepted(memory_keyring, text, message):
    manager = ProfileManager()
    with pytest.raises(ConnectionStringError) as info:
        manager.add("hub", text)
    assert message in str(info.value)
    assert KEY not in str(info.value)
    assert manager.list() == []
    assert memory_keyring.passwords == {}


def test_duplicate_names_are_rejected_case_insensitively(memory_keyring):
    manager = ProfileManager()
    manager.add("Hub", CS)
    other = CS.replace("hub.example", "other.example")
    for name in ("Hub", "hub", " HUB "):
        with pytest.raises(DuplicateProfile, match="a connection named 'Hub' already exists"):
            manager.add(name, other)
    assert manager.get_connection_string("Hub") == CS


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "empty"), ("   ", "empty"), ("a\nb", "control"), ("x" * 101, "longer than 100")],
)
def test_bad_names(memory_keyring, name, message):
    with pytest.raises(ProfileError, match=message):
        ProfileManager().add(name, CS)


def test_names_are_stripped(memory_keyring):
    assert ProfileManager().add("  hub  ", CS).name == "hub"


def test_lost_secret_is_a_clear_error(memory_keyring):
    manager = ProfileManager()
    manager.add("hub", CS)
    memory_keyring.passwords.clear()
    with pytest.raises(SecretMissing, match="no longer in the system keyring"):
        manager.get_connection_string("hub")


def test_unknown_profile(memory_keyring):
    manager = ProfileManager()
    with pytest.raises(UnknownProfile, match="no saved connection named 'nope'"):
        manager.get_connection_string("nope")
    with pytest.raises(UnknownProfile):
        manager.remove("nope")
    with pytest.raises(UnknownProfile):
        manager.touch("nope")


def test_remove_deletes_metadata_and_secret(memory_keyring):
    manager = ProfileManager()
    manager.add("a", CS)
    manager.add("b", CS)
    manager.remove("a")
    assert [p.name for p in manager.list()] == ["b"]
    assert memory_keyring.passwords == {(SERVICE_NAME, "b"): CS}


def test_remove_when_the_secret_is_already_gone(memory_keyring):
    manager = ProfileManager()
    manager.add("a", CS)
    memory_keyring.passwords.clear()
    manager.remove("a")
    assert manager.list() == []


def test_remove_keeps_metadata_when_the_keyring_refuses(use_keyring):
    class NoDelete(MemoryKeyring):
        def delete_password(self, service, username):
            raise keyring.errors.PasswordDeleteError("no")

    use_keyring(NoDelete())
    manager = ProfileManager()
    manager.add("a", CS)
    with pytest.raises(SecretStoreError):
        manager.remove("a")
    assert [p.name for p in manager.list()] == ["a"]


def test_touch_records_last_used(memory_keyring):
    manager = ProfileManager()
    manager.add("hub", CS)
    touched = manager.touch("hub")
    stamp = datetime.fromisoformat(touched.last_used)
    assert stamp.tzinfo is not None
    assert ProfileManager().get("hub").last_used == touched.last_used


def test_rename_moves_the_secret(memory_keyring):
    manager = ProfileManager()
    manager.add("old", CS)
    manager.add("other", CS)
    renamed = manager.rename("old", "new")
    assert renamed.name == "new"
    assert [p.name for p in manager.list()] == ["new", "other"]
    assert manager.get_connection_string("new") == CS
    assert (SERVICE_NAME, "old") not in memory_keyring.passwords
    with pytest.raises(DuplicateProfile):
        manager.rename("new", "OTHER")
    assert manager.rename("new", "New").name == "New"  # a case-only rename is allowed


def test_session_only_profiles_never_reach_disk_or_keyring(memory_keyring, app_home):
    manager = ProfileManager()
    profile = manager.add("temp", CS, session_only=True)
    assert profile.session_only
    assert manager.list() == [profile]
    assert manager.get_connection_string("temp") == CS
    assert memory_keyring.passwords == {}
    assert not manager.path.exists()
    assert files_containing(app_home, KEY[:20]) == []
    assert ProfileManager().list() == []  # gone with the session

    manager.add("kept", CS)
    manager.touch("temp")
    assert [p.name for p in ProfileManager().list()] == ["kept"]
    with pytest.raises(DuplicateProfile):
        manager.add("TEMP", CS)
    manager.remove("temp")
    assert [p.name for p in manager.list()] == ["kept"]


def test_damaged_file_is_reported_not_overwritten(memory_keyring):
    manager = ProfileManager()
    manager.path.write_text("{not json")
    with pytest.raises(ProfileStorageError, match="is damaged"):
        manager.list()
    with pytest.raises(ProfileStorageError):
        manager.add("hub", CS)
    assert manager.path.read_text() == "{not json"
    assert memory_keyring.passwords == {}


def test_a_bare_list_file_is_read(memory_keyring):
    manager = ProfileManager()
    manager.path.write_text(json.dumps([{"name": "x", "host": "h", "policy": "p"}]))
    assert manager.list() == [Profile(name="x", host="h", policy="p")]


def test_default_secret_store_is_the_keyring_store():
    assert isinstance(ProfileManager().secrets, SecretStore)


def test_an_entra_profile_has_no_secret_and_keeps_its_settings(memory_keyring, app_home):
    manager = ProfileManager()
    fields = {"credential": "device_code", "tenant_id": "contoso.onmicrosoft.com"}
    manager.add_entra("Contoso", "contoso.azure-devices.net", fields)
    assert memory_keyring.passwords == {}  # nothing secret to keep
    manager.set_entra("Contoso", {**fields, "record": '{"username": "ada@contoso.com"}'})
    again = ProfileManager()
    profile = again.get("Contoso")
    assert profile.entra == {**fields, "record": '{"username": "ada@contoso.com"}'}
    assert (profile.host, profile.policy) == ("contoso.azure-devices.net", "")
    with pytest.raises(ProfileError, match="Entra ID"):
        again.get_connection_string("Contoso")
    again.rename("Contoso", "Contoso prod")
    again.remove("Contoso prod")
    assert again.list() == []
    # A file written before Entra profiles existed reads as before.
    assert "entra" not in Profile("x", "h", "p").to_json()
