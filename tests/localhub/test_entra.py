"""Microsoft Entra ID sign-in on the local hub, through the unmodified SDKs.

The seed's service flow with ``IoTHubRegistryManager.from_token_credential`` and real
``azure-identity`` credentials pointed at the hub's own authority; the data-plane roles
allowing and refusing what IoT Hub documents; bad tokens refused; shared keys refused
under ``--disable-local-auth``; role assignments managed by ``twin-explorer hub roles``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import pytest_asyncio
from azure.identity import ClientSecretCredential, DeviceCodeCredential
from azure.iot.device import ProxyOptions
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import QuerySpecification, Twin, TwinProperties
from cryptography.hazmat.primitives.asymmetric import rsa
from msrest.exceptions import HttpOperationError

from tests.hubfixtures import RestClient, assert_error, auth_header, trusting_registry_manager
from tests.localhub.mqtt_support import sdk_client
from twin_explorer.cli import main as cli_main
from twin_explorer.connection.sas import device_resource_uri, generate_device_token
from twin_explorer.localhub.core.entra import IOTHUB_RESOURCE
from twin_explorer.localhub.core.roles import ROLES
from twin_explorer.localhub.errors import AuthError, HubError
from twin_explorer.localhub.runtime.server import HubServer
from twin_explorer.localhub.store.entra_files import SIGNING_KEY_NAME

DEVICE, MODULE = "seed-device", "seed-module"


@pytest_asyncio.fixture
async def entra_hub(hub_data_dir) -> AsyncIterator[HubServer]:
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=0, entra_auto_approve=True
    ) as server:
        yield server


def client_credential(info: dict[str, Any]) -> ClientSecretCredential:
    """The test client, as a script reads it from the ready line."""
    return ClientSecretCredential(
        info["entra_tenant_id"],
        info["entra_client_id"],
        info["entra_client_secret"],
        authority=info["entra_authority"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
    )


async def token_manager(info: dict[str, Any], credential: Any) -> IoTHubRegistryManager:
    """The seed's ``from_token_credential``, off the loop: it asks for a token at once
    (for its AMQP client), and the in-process hub must be free to answer."""
    return await asyncio.to_thread(_token_manager, info, credential)


def _token_manager(info: dict[str, Any], credential: Any) -> IoTHubRegistryManager:
    manager = IoTHubRegistryManager.from_token_credential(
        f"{info['hostname']}:{info['rest_port']}", credential
    )
    manager.protocol.config.connection.verify = info["ca_cert"]
    manager.protocol.config.proxies.use_env_settings = False
    return manager


def roles(hub: HubServer, *args: str) -> int:
    """``twin-explorer hub roles ...`` on this hub's data folder."""
    action, *rest = args
    return cli_main(["hub", "roles", action, "--data-dir", str(hub.data_dir), *rest])


async def refused(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(HttpOperationError) as info:
        await asyncio.to_thread(call, *args)
    response = info.value.response
    return response.status_code, response.text


async def test_seed_flow_with_a_client_secret_credential(entra_hub, capsys):
    info = entra_hub.ready_info()
    assert roles(entra_hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
    assert "IoT Hub Data Contributor" in capsys.readouterr().out
    manager = await token_manager(info, client_credential(info))

    def seed() -> tuple[Any, Any, Any]:
        manager.create_device_with_sas(DEVICE, None, None, "enabled")
        module = manager.create_module_with_sas(DEVICE, MODULE, None, None, None)
        twin = manager.get_module_twin(DEVICE, MODULE)
        patch = Twin(properties=TwinProperties(desired={"telemetryInterval": 42}))
        patched = manager.update_module_twin(DEVICE, MODULE, patch, twin.etag)
        query = manager.query_iot_hub(
            QuerySpecification(query=f"SELECT * FROM devices.modules WHERE moduleId = '{MODULE}'")
        )
        return module, patched, query

    module, patched, query = await asyncio.to_thread(seed)
    assert module.module_id == MODULE and module.authentication.symmetric_key.primary_key
    assert patched.properties.desired["telemetryInterval"] == 42
    assert [(t.device_id, t.module_id) for t in query.items] == [(DEVICE, MODULE)]
    # The hub's own view agrees: the write went through.
    assert entra_hub.core.get_twin(DEVICE, MODULE)["properties"]["desired"][
        "telemetryInterval"
    ] == 42


# What each built-in role allows (IoT Hub's permissions table; Data Reader is */read).
OPERATIONS = {
    "get_device": ("devices/read", {"Data Contributor", "Data Reader", "Registry Contributor"}),
    "create_device": ("devices/write", {"Data Contributor", "Registry Contributor"}),
    "delete_device": ("devices/delete", {"Data Contributor", "Registry Contributor"}),
    "get_twin": ("twins/read", {"Data Contributor", "Data Reader", "Twin Contributor"}),
    "update_twin": ("twins/write", {"Data Contributor", "Twin Contributor"}),
    "query": ("twins/read", {"Data Contributor", "Data Reader", "Twin Contributor"}),
    "statistics": ("statistics/read", {"Data Contributor", "Data Reader"}),
    "invoke_method": ("directMethods/invoke/action", {"Data Contributor"}),
}


def _call(manager: IoTHubRegistryManager, name: str) -> Any:
    from azure.iot.hub.models import CloudToDeviceMethod

    if name == "get_device":
        return manager.get_device("existing")
    if name == "create_device":
        return manager.create_device_with_sas("new-one", None, None, "enabled")
    if name == "delete_device":
        return manager.delete_device("doomed")
    if name == "get_twin":
        return manager.get_twin("existing")
    if name == "update_twin":
        return manager.update_twin("existing", Twin(tags={"floor": 3}), "*")
    if name == "query":
        return manager.query_iot_hub(QuerySpecification(query="SELECT * FROM devices"))
    if name == "statistics":
        return manager.get_service_statistics()
    if name == "invoke_method":
        return manager.invoke_device_method("existing", CloudToDeviceMethod(method_name="m"))
    raise AssertionError(name)


@pytest.mark.parametrize("role", [None, *ROLES])
async def test_each_role_allows_and_refuses_as_iot_hub_documents(entra_hub, role):
    owner = trusting_registry_manager(
        entra_hub.service_connection_string(), entra_hub.certificates.ca_cert
    )
    for device in ("existing", "doomed"):
        await asyncio.to_thread(owner.create_device_with_sas, device, None, None, "enabled")
    if role is not None:
        assert roles(entra_hub, "assign", "test-client", role) == 0
    info = entra_hub.ready_info()
    manager = await token_manager(info, client_credential(info))
    short = role.removeprefix("IoT Hub ") if role else None
    for name, (action, allowed) in OPERATIONS.items():
        if short in allowed:
            try:
                await asyncio.to_thread(_call, manager, name)
            except HttpOperationError as exc:  # an offline device is not a refusal
                assert (name, exc.response.status_code) == ("invoke_method", 404), exc
            continue
        status, body = await refused(_call, manager, name)
        assert status == 401, (role, name, action, body)
        message = json.loads(body)["Message"]
        assert message.startswith("ErrorCode:IotHubUnauthorized;Principal "), message
        assert "due to no assigned permissions" in message, (role, name)


async def test_role_changes_apply_at_once_and_list_shows_them(entra_hub, capsys):
    info = entra_hub.ready_info()
    manager = await token_manager(info, client_credential(info))
    status, body = await refused(manager.get_service_statistics)
    assert status == 401 and "GET on /statistics/service" in body
    assert roles(entra_hub, "assign", "test-client", "data reader") == 0
    assert (await asyncio.to_thread(manager.get_service_statistics)).connected_device_count == 0
    capsys.readouterr()
    assert roles(entra_hub, "list") == 0
    listed = capsys.readouterr().out
    assert entra_hub.core.entra.client_object_id in listed
    assert "IoT Hub Data Reader" in listed
    assert roles(entra_hub, "remove", "test-client", "IoT Hub Data Reader") == 0
    assert (await refused(manager.get_service_statistics))[0] == 401
    # A role that does not exist is refused with the ones that do.
    assert roles(entra_hub, "assign", "test-client", "Owner") == 2
    assert "IoT Hub Twin Contributor" in capsys.readouterr().err


# -- tokens the hub must refuse ---------------------------------------------------------


def _forged(hub: HubServer, **changes: Any) -> str:
    """A token like the hub's, re-signed with another key (a different authority)."""
    genuine = hub.core.entra.access_token(hub.core.entra.test_client())
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header = jwt.get_unverified_header(genuine)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({**claims, **changes}, other, algorithm="RS256", headers=header)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("expired", "expired"),
        ("not yet valid", "not valid yet"),
        ("wrong audience", "not for IoT Hub"),
        ("wrong issuer", "not issued by"),
        ("wrong signature", "signature"),
        ("not a JWT", "not a valid JWT"),
    ],
)
async def test_bad_tokens_are_refused(entra_hub, kind, words):
    assert roles(entra_hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
    entra = entra_hub.core.entra
    client = entra.test_client()
    tokens = {
        "expired": lambda: entra.access_token(client, lifetime=-600),
        "not yet valid": lambda: entra.access_token(client, not_before=time.time() + 600),
        "wrong audience": lambda: entra.access_token(client, audience="https://management.azure.com"),
        "wrong issuer": lambda: entra.access_token(client, issuer="https://login.example/x/v2.0"),
        "wrong signature": lambda: _forged(entra_hub),
        "not a JWT": lambda: "not-a-token",
    }
    rest = RestClient.for_server(entra_hub)
    try:
        good = await rest.request(
            "GET", "/statistics/service", auth=f"Bearer {entra.access_token(client)}"
        )
        assert good[0] == 200
        response = await rest.request(
            "GET", "/statistics/service", auth=f"Bearer {tokens[kind]()}"
        )
        await assert_error(response, 401, "IotHubUnauthorizedAccess", words)
    finally:
        await rest.close()


async def test_token_endpoint_refuses_a_wrong_secret_and_a_foreign_scope(entra_hub):
    from azure.core.exceptions import ClientAuthenticationError

    info = entra_hub.ready_info()
    wrong = ClientSecretCredential(
        info["entra_tenant_id"],
        info["entra_client_id"],
        "not-the-secret",
        authority=info["entra_authority"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        await asyncio.to_thread(wrong.get_token, IOTHUB_RESOURCE + "/.default")
    with pytest.raises(ClientAuthenticationError, match="AADSTS1002012"):
        await asyncio.to_thread(
            client_credential(info).get_token, "https://management.azure.com/.default"
        )


# -- the device code flow (the scripted sign-in of a user) -----------------------------


def _post_form(url: str, fields: dict[str, str], ca_cert: str) -> str:
    context = ssl.create_default_context(cafile=ca_cert)
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), context=context) as r:
        return r.read().decode()


async def test_device_code_sign_in_on_the_verification_page(hub_data_dir):
    async with HubServer(hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=0) as hub:
        info = hub.ready_info()
        assert roles(hub, "assign", "test-user", "IoT Hub Twin Contributor") == 0
        pages: list[str] = []

        def enter_code(verification_uri: str, user_code: str, expires_on: Any) -> None:
            # What the person does: open the page and enter the code (on another thread,
            # as a browser would, while the credential polls).
            def person() -> None:
                form = {"user_code": user_code}
                pages.append(_post_form(verification_uri, form, info["ca_cert"]))

            threading.Thread(target=person, daemon=True).start()

        credential = DeviceCodeCredential(
            tenant_id=info["entra_tenant_id"],
            authority=info["entra_authority"],
            disable_instance_discovery=True,
            connection_verify=info["ca_cert"],
            prompt_callback=enter_code,
            timeout=60,
        )
        owner = trusting_registry_manager(hub.service_connection_string(), hub.certificates.ca_cert)
        await asyncio.to_thread(owner.create_device_with_sas, DEVICE, None, None, "enabled")
        manager = await token_manager(info, credential)
        twin = await asyncio.to_thread(manager.get_twin, DEVICE)
        assert twin.device_id == DEVICE
        assert "Signed in as tester@localhub.test" in pages[0]
        # The token speaks for the user: a Twin Contributor reads no identities.
        status, body = await refused(manager.get_device, DEVICE)
        assert status == 401 and "Principal tester@localhub.test is not authorized" in body


async def test_device_code_auto_approved_for_scripts(entra_hub):
    info = entra_hub.ready_info()
    assert roles(entra_hub, "assign", "test-user", "IoT Hub Data Reader") == 0
    credential = DeviceCodeCredential(
        tenant_id=info["entra_tenant_id"],
        authority=info["entra_authority"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
        prompt_callback=lambda *_: None,
        timeout=60,
    )
    token = await asyncio.to_thread(credential.get_token, IOTHUB_RESOURCE + "/.default")
    principal = entra_hub.core.entra.verify_access_token(token.token)
    assert (principal.name, principal.is_user) == ("tester@localhub.test", True)
    assert (await asyncio.to_thread((await token_manager(info, credential)).get_service_statistics))


# -- shared keys off -------------------------------------------------------------------


async def test_disable_local_auth_refuses_shared_keys_but_not_tokens(hub_data_dir):
    async with HubServer(
        hub_data_dir(), rest_port=0, mqtt_port=0, proxy_port=0, disable_local_auth=True
    ) as hub:
        info = hub.ready_info()
        assert info["local_auth"] is False
        sas = trusting_registry_manager(hub.service_connection_string(), hub.certificates.ca_cert)
        status, body = await refused(sas.get_service_statistics)
        assert status == 401 and "Shared access keys are disabled" in body
        assert roles(hub, "assign", "test-client", "IoT Hub Data Contributor") == 0
        manager = await token_manager(info, client_credential(info))
        await asyncio.to_thread(manager.create_device_with_sas, DEVICE, None, None, "enabled")
        # Devices: their own keys still work (turning those off is disableDeviceSAS,
        # another switch): the device SDK connects and reports through the hub.
        device_string = hub.core.identity_connection_string(DEVICE)
        ca_pem = hub.certificates.ca_cert.read_text()
        proxy = ProxyOptions(
            proxy_type="HTTP", proxy_addr="127.0.0.1", proxy_port=hub.proxy_port
        )
        async with sdk_client(device_string, ca_pem, proxy) as device:
            await device.connect()
            await device.patch_twin_reported_properties({"seen": True})
        assert hub.core.get_twin(DEVICE)["properties"]["reported"]["seen"] is True
        # A device token signed with a policy key (hub-scoped) is refused.
        resource = device_resource_uri(hub.hostname, DEVICE)
        policy = generate_device_token(
            resource, hub.core.policy_keys("device")[0], policy="device"
        )
        with pytest.raises(AuthError, match="Shared access keys are disabled"):
            hub.core.authenticate_device(DEVICE, None, policy)
        own_key = hub.core.get_device(DEVICE)["authentication"]["symmetricKey"]["primaryKey"]
        own = generate_device_token(resource, own_key)
        assert hub.core.authenticate_device(DEVICE, None, own).policy is None


async def test_signing_key_is_private_and_kept(entra_hub):
    path = entra_hub.data_dir / SIGNING_KEY_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert entra_hub.core.entra.jwks()["keys"][0]["kid"] == entra_hub.core.entra.key_id


async def test_sas_still_works_when_local_auth_is_on(entra_hub):
    rest = RestClient.for_server(entra_hub)
    try:
        status, _ = await rest.json(
            "GET", "/statistics/service", auth=auth_header(entra_hub.service_connection_string())
        )
        assert status == 200
    finally:
        await rest.close()


# -- the core check every transport uses (REST Bearer, AMQP CBS jwt) --------------------


def test_core_token_check_for_any_transport(core, clock):
    from twin_explorer.localhub.core.roles import Permission

    entra = core.entra
    token = entra.access_token(entra.test_client())
    with pytest.raises(HubError) as refused_error:  # valid, but no role yet
        core.access.authorize_token(token, Permission.C2D_SEND, "POST", "/messages/devicebound")
    assert refused_error.value.error_code == "IotHubUnauthorized"
    assert "POST on /messages/devicebound" in refused_error.value.message
    core.access.roles.assign(entra.client_object_id, "test client", "IoT Hub Data Contributor")
    principal = core.access.authorize_token(token, Permission.C2D_SEND, "POST", "/x")
    assert (principal.app_id, principal.is_user) == (entra.client_id, False)
    # Times are the hub's: an hour and a bit later the same token has expired.
    clock.advance(3600 + 61)
    with pytest.raises(AuthError, match="expired"):
        core.access.authorize_token(token, Permission.C2D_SEND, "POST", "/x")


# -- the interactive browser flow (authorization code with PKCE) -----------------------


async def test_interactive_browser_sign_in(entra_hub, monkeypatch):
    import sys
    from pathlib import Path

    from azure.identity import InteractiveBrowserCredential

    info = entra_hub.ready_info()
    assert roles(entra_hub, "assign", "test-user", "IoT Hub Data Reader") == 0
    browser = Path(__file__).with_name("fake_browser.py")
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")
    monkeypatch.setenv("LOCALHUB_CA", info["ca_cert"])
    credential = InteractiveBrowserCredential(
        tenant_id=info["entra_tenant_id"],
        authority=info["entra_authority"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
        timeout=60,
    )
    scopes = [IOTHUB_RESOURCE + "/.default"]
    record = await asyncio.to_thread(credential.authenticate, scopes=scopes)
    assert record.username == "tester@localhub.test"
    manager = await token_manager(info, credential)
    assert (await asyncio.to_thread(manager.get_service_statistics)).connected_device_count == 0


async def test_a_signed_in_user_is_refreshed_silently(entra_hub):
    """msal renews a token about to expire with the refresh token, asking nothing."""
    info = entra_hub.ready_info()
    entra_hub.core.entra.token_lifetime = 120  # under msal's 5-minute renewal margin
    prompts: list[str] = []
    credential = DeviceCodeCredential(
        tenant_id=info["entra_tenant_id"],
        authority=info["entra_authority"],
        disable_instance_discovery=True,
        connection_verify=info["ca_cert"],
        prompt_callback=lambda uri, code, _: prompts.append(code),
        timeout=60,
    )
    scope = IOTHUB_RESOURCE + "/.default"
    first = await asyncio.to_thread(credential.get_token, scope)
    second = await asyncio.to_thread(credential.get_token, scope)
    assert len(prompts) == 1  # one sign-in, then the refresh token
    assert second.token != first.token
    assert entra_hub.core.entra.verify_access_token(second.token).name == "tester@localhub.test"


def test_hub_command_with_local_auth_disabled(start_local_hub, app_home):
    """``twin-explorer hub --disable-local-auth``: the ready line says so, SAS is refused,
    and the secret of the test client is on the ready line but in no log."""
    hub = start_local_hub("no-keys", extra_args=("--disable-local-auth",))
    assert hub.info["local_auth"] is False
    with pytest.raises(HttpOperationError) as info:
        hub.registry_manager().get_service_statistics()
    assert info.value.response.status_code == 401
    assert "Shared access keys are disabled" in info.value.response.text
    secret = hub.info["entra_client_secret"]
    assert secret and secret not in hub.stderr_tail(100_000)
    logs = [path for path in app_home.rglob("*.log") if path.is_file()]
    assert logs and all(secret.encode() not in path.read_bytes() for path in logs)
    assert roles_cli_for(hub.data_dir, "assign", "test-client", "Data Contributor") == 0
    manager = _token_manager(hub.info, client_credential(hub.info))
    assert manager.get_service_statistics().connected_device_count == 0


def roles_cli_for(data_dir, action: str, *rest: str) -> int:
    return cli_main(["hub", "roles", action, "--data-dir", str(data_dir), *rest])


async def test_default_azure_credential_from_the_environment(entra_hub, monkeypatch):
    """DefaultAzureCredential's first source, the environment, with the test client; the
    app reads who signed in from the token."""
    from azure.identity import DefaultAzureCredential

    from twin_explorer.service import entra as app_entra

    info = entra_hub.ready_info()
    assert roles(entra_hub, "assign", "test-client", "IoT Hub Data Reader") == 0
    monkeypatch.setenv("AZURE_TENANT_ID", info["entra_tenant_id"])
    monkeypatch.setenv("AZURE_CLIENT_ID", info["entra_client_id"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", info["entra_client_secret"])
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", info["entra_authority"])
    credential = DefaultAzureCredential(
        disable_instance_discovery=True, connection_verify=info["ca_cert"]
    )
    record, account = await asyncio.to_thread(app_entra.sign_in, credential)
    assert record is None
    assert account == app_entra.Account("Twin Explorer test client", info["entra_tenant_id"])
    manager = await token_manager(info, credential)
    assert (await asyncio.to_thread(manager.get_service_statistics)).connected_device_count == 0


def test_pending_sign_ins_are_capped_until_they_expire(core, clock):
    from twin_explorer.localhub.core.entra import DEVICE_CODE_SECONDS, OAuthError

    form = {"client_id": "app", "scope": IOTHUB_RESOURCE + "/.default offline_access"}
    for _ in range(256):
        core.entra.start_device_code(form)
    with pytest.raises(OAuthError) as info:
        core.entra.start_device_code(form)
    assert info.value.error == "slow_down"
    clock.advance(DEVICE_CODE_SECONDS + 1)
    assert core.entra.start_device_code(form)["user_code"]


def test_local_auth_off_refuses_hub_wide_tokens_on_connections(core, clock):
    """AMQP CBS put-token and SASL PLAIN: a policy's hub-wide token is refused, a device's
    own token still speaks for it."""
    from twin_explorer.connection.sas import generate_service_token

    core.put_device("d1", {"status": "enabled"}, None)
    hub_token = generate_service_token(
        core.hostname, "iothubowner", core.policy_keys("iothubowner")[0], now=clock.seconds
    )
    assert core.authenticate_token(hub_token).policy == "iothubowner"
    key = core.get_device("d1")["authentication"]["symmetricKey"]["primaryKey"]
    own = generate_device_token(
        device_resource_uri(core.hostname, "d1"), key, now=clock.seconds
    )
    core.local_auth_disabled = True
    with pytest.raises(AuthError, match="Shared access keys are disabled"):
        core.authenticate_token(hub_token)
    assert core.authenticate_token(own).identity.device_id == "d1"
