"""An Entra ID hub connection through the app's own session, on a local hub's authority:
sign in once (device code), use the hub, then a new session (the app started again)
opens it from the OS keyring's token cache without asking; no token lands in a file;
a missing role is explained with the role to grant.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio

from twin_explorer.cli import main as cli_main
from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.service import entra, errors
from twin_explorer.service.session import HubSessionState

DEVICE = "entra-device"


@pytest.fixture
def keyring_env(secret_service, monkeypatch, tmp_path):
    """The test Secret Service on this process's session bus; HOME in tmp (azure-identity
    touches a signal file there)."""
    for name, value in secret_service.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert entra.cache_problem() is None, entra.cache_problem()
    return home


@pytest_asyncio.fixture
async def authority_hub(hub_data_dir):
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=0, entra_auto_approve=True
    ) as hub:
        hub.core.put_device(DEVICE, {"status": "enabled"}, None)
        yield hub


def _settings(hub: HubServer) -> entra.EntraSettings:
    info = hub.ready_info()
    return entra.EntraSettings(
        host=f"{info['hostname']}:{info['rest_port']}",
        credential="device_code",
        tenant_id=info["entra_tenant_id"],
        authority=info["entra_authority"],
        ca_cert=info["ca_cert"],
    )


def _roles(hub: HubServer, *args: str) -> None:
    assert cli_main(["hub", "roles", *args[:1], "--data-dir", str(hub.data_dir), *args[1:]]) == 0


async def test_sign_in_once_then_the_next_start_asks_nothing(
    authority_hub, keyring_env, app_home, tmp_path
):
    _roles(authority_hub, "assign", "test-user", "IoT Hub Data Contributor")
    settings = _settings(authority_hub)
    prompts: list[str] = []
    credential = entra.make_credential(settings, prompt=lambda uri, code, _: prompts.append(code))
    record, account = await asyncio.to_thread(entra.sign_in, credential)
    assert prompts and account == entra.Account(
        "tester@localhub.test", authority_hub.core.entra.tenant_id
    )
    profiles = ProfileManager(tmp_path / "config")
    profiles.add_entra("Entra hub", settings.host, entra.fields_of(settings))
    profiles.set_entra("Entra hub", {**entra.fields_of(settings), "record": record})

    first = HubSessionState(profiles)
    service = await first.open("Entra hub")
    statuses: list[tuple[str, bool]] = []
    first.status.subscribe(statuses.append)
    await first.check()
    assert statuses[-1][1] and "tester@localhub.test" in statuses[-1][0]
    twin = await service.get_twin(DEVICE)
    await service.patch_twin(DEVICE, None, {"tags": {"room": "lab"}}, twin.etag)
    await first.aclose()

    # The app starts again: a new session over the same saved profile. No prompt may
    # come (the credential would raise AuthenticationRequiredError instead of asking).
    again = HubSessionState(ProfileManager(tmp_path / "config"))
    service = await again.open("Entra hub")
    assert (await service.get_twin(DEVICE)).tags == {"room": "lab"}
    await again.aclose()
    assert len(prompts) == 1

    # Nothing secret on disk: not the profile file, not azure-identity's signal file,
    # nothing in the user's home or the app's folders (the hub's own folder aside).
    fields = {**entra.fields_of(settings), "record": record}
    credential = entra.make_credential(entra.settings_of(settings.host, fields))
    token = await asyncio.to_thread(credential.get_token, entra.IOTHUB_SCOPE)
    leaks = await asyncio.to_thread(
        _files_holding, [tmp_path / "config", keyring_env, app_home], token.token
    )
    assert leaks == []
    assert (keyring_env / ".IdentityService").is_dir()  # the cache's signal file is here


def _files_holding(folders: list[Path], token: str) -> list[Path]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if token.encode() in data or b"refresh_token" in data or b"eyJ" in data:
                found.append(path)
    return found


async def test_a_missing_role_names_the_role_and_how_to_grant_it(
    authority_hub, keyring_env, tmp_path
):
    _roles(authority_hub, "assign", "test-user", "IoT Hub Twin Contributor")
    settings = _settings(authority_hub)
    record, _ = await asyncio.to_thread(entra.sign_in, entra.make_credential(settings))
    profiles = ProfileManager(tmp_path / "config")
    profiles.add_entra("Twins only", settings.host, {**entra.fields_of(settings), "record": record})
    session = HubSessionState(profiles)
    with pytest.raises(errors.Unauthorized) as info:  # the status check reads statistics
        await session.open("Twins only")
    assert "IoT Hub Data Reader" in (info.value.hint or "")
    service = session.service
    assert service is not None
    assert (await service.get_twin(DEVICE)).device_id == DEVICE  # its role allows this
    with pytest.raises(errors.Unauthorized) as info:
        await service.create_device(DEVICE + "-2")
    hint = info.value.hint or ""
    assert "IoT Hub Registry Contributor or IoT Hub Data Contributor" in hint
    assert 'twin-explorer hub roles assign <principal> "IoT Hub Registry Contributor"' in hint
    assert "Access control (IAM)" in hint
    await session.aclose()
