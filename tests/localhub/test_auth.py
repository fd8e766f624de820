"""Authorization decisions with SDK-shaped tokens (B.2, B.9, A.2, A.3, D.3)."""

from __future__ import annotations

import pytest

from tests.localhub.conftest import FakeClock, sas_body
from twin_explorer.connection.sas import (
    device_resource_uri,
    generate_device_token,
    generate_key,
    generate_service_token,
)
from twin_explorer.connection.strings import parse
from twin_explorer.localhub.core.auth import Identity, Right
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import AuthError, HubError

USERNAME = (
    "localhost/{}/?api-version=2019-10-01&DeviceClientType=azure-iot-device-iothub-py%2F2.14.0"
)


def _service(core: HubCore, clock: FakeClock, policy: str, host: str = "localhost:8443") -> str:
    key = core.policy_keys(policy)[0]
    return generate_service_token(host, policy, key, now=clock.seconds)


def test_default_policies_and_rights(core: HubCore) -> None:
    rights = {p.name: {r.value for r in p.rights} for p in core.policies()}
    assert rights == {
        "iothubowner": {"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"},
        "service": {"ServiceConnect"},
        "device": {"DeviceConnect"},
        "registryRead": {"RegistryRead"},
        "registryReadWrite": {"RegistryRead", "RegistryWrite"},
    }
    primary, secondary = core.policy_keys("service")
    assert primary != secondary
    with pytest.raises(KeyError):
        core.policy_keys("nope")


def test_service_connection_string(core: HubCore) -> None:
    cs = parse(core.service_connection_string("registryRead", "localhost:8443"))
    assert cs.host_name == "localhost:8443"
    assert cs.shared_access_key_name == "registryRead"
    assert cs.shared_access_key == core.policy_keys("registryRead")[0]


@pytest.mark.parametrize("host", ["localhost", "localhost:8443", "LOCALHOST:1"])
def test_owner_token_is_accepted_with_or_without_port(
    core: HubCore, clock: FakeClock, host: str
) -> None:
    header = _service(core, clock, "iothubowner", host)
    for right in Right:
        assert core.authorize_service(header, right) == "iothubowner"


def test_secondary_key_works(core: HubCore, clock: FakeClock) -> None:
    key = core.policy_keys("service")[1]
    header = generate_service_token("localhost", "service", key, now=clock.seconds)
    assert core.authorize_service(header, Right.SERVICE_CONNECT) == "service"


def _refused(core: HubCore, header: str | None, right: object) -> str:
    with pytest.raises(AuthError) as exc:
        core.authorize_service(header, right)  # type: ignore[arg-type]
    assert (exc.value.status, exc.value.error_code, exc.value.numeric) == (
        401,
        "IotHubUnauthorizedAccess",
        401002,
    )
    return exc.value.message


def test_registry_read_cannot_write(core: HubCore, clock: FakeClock) -> None:
    header = _service(core, clock, "registryRead")
    assert core.authorize_service(header, Right.REGISTRY_READ) == "registryRead"
    message = _refused(core, header, Right.REGISTRY_WRITE)
    assert message == "Policy 'registryRead' lacks the Registry Write permission."
    _refused(core, header, Right.SERVICE_CONNECT)


def test_query_accepts_either_right(core: HubCore, clock: FakeClock) -> None:
    either = (Right.SERVICE_CONNECT, Right.REGISTRY_READ)
    assert core.authorize_service(_service(core, clock, "service"), either) == "service"
    assert core.authorize_service(_service(core, clock, "registryRead"), either)
    message = _refused(core, _service(core, clock, "device"), either)
    assert "Service Connect or Registry Read" in message


def test_wrong_key_expired_and_malformed(core: HubCore, clock: FakeClock) -> None:
    wrong = generate_service_token("localhost", "service", generate_key(), now=clock.seconds)
    assert "wrong key for policy 'service'" in _refused(core, wrong, Right.SERVICE_CONNECT)
    key = core.policy_keys("service")[0]
    old = generate_service_token("localhost", "service", key, ttl=60, now=clock.seconds - 61)
    assert "expired" in _refused(core, old, Right.SERVICE_CONNECT)
    assert "no Authorization" in _refused(core, None, Right.SERVICE_CONNECT)
    assert "not a valid" in _refused(core, "Bearer abc", Right.SERVICE_CONNECT)
    other_hub = generate_service_token("other.example", "service", key, now=clock.seconds)
    assert "not for this hub" in _refused(core, other_hub, Right.SERVICE_CONNECT)
    unknown = generate_service_token("localhost", "ghost", key, now=clock.seconds)
    assert "no shared access policy 'ghost'" in _refused(core, unknown, Right.SERVICE_CONNECT)
    device_key_token = generate_device_token("localhost", key, now=clock.seconds)
    assert "names no shared access policy" in _refused(
        core, device_key_token, Right.SERVICE_CONNECT
    )


# -- devices over MQTT CONNECT ---------------------------------------------------------


@pytest.fixture
def identities(core: HubCore) -> dict[str, str]:
    device = core.put_device("d1", sas_body(), None)
    module, _ = core.put_module("d1", "m1", {}, None)
    return {
        "d1": device["authentication"]["symmetricKey"]["primaryKey"],
        "d1/m1": module["authentication"]["symmetricKey"]["primaryKey"],
        "d1/m1 secondary": module["authentication"]["symmetricKey"]["secondaryKey"],
    }


def _token(
    clock: FakeClock, client_id: str, key: str, host: str = "localhost", **kw: object
) -> str:
    device_id, _, module_id = client_id.partition("/")
    uri = device_resource_uri(host, device_id, module_id or None)
    return generate_device_token(uri, key, now=clock.seconds, **kw)  # type: ignore[arg-type]


def _login(core: HubCore, client_id: str, password: str | None) -> Identity:
    return core.authenticate_device(client_id, USERNAME.format(client_id), password)


def _login_refused(core: HubCore, client_id: str, password: str | None) -> str:
    with pytest.raises(AuthError) as exc:
        _login(core, client_id, password)
    assert exc.value.status == 401
    return exc.value.message


def test_device_and_module_keys(core: HubCore, clock: FakeClock, identities: dict) -> None:
    assert _login(core, "d1", _token(clock, "d1", identities["d1"])) == Identity("d1", None)
    module = _login(core, "d1/m1", _token(clock, "d1/m1", identities["d1/m1"]))
    assert module == Identity("d1", "m1") and module.client_id == "d1/m1"
    assert _login(core, "d1/m1", _token(clock, "d1/m1", identities["d1/m1 secondary"]))
    # The host part is whatever HostName the client had (GatewayHostName case, A.1).
    assert _login(core, "d1", _token(clock, "d1", identities["d1"], "myhub.azure-devices.net"))


def test_module_and_device_keys_do_not_mix(
    core: HubCore, clock: FakeClock, identities: dict
) -> None:
    # A module token signed with the device key is refused, and vice versa.
    assert "wrong key" in _login_refused(core, "d1/m1", _token(clock, "d1/m1", identities["d1"]))
    assert "wrong key" in _login_refused(core, "d1", _token(clock, "d1", identities["d1/m1"]))
    # A device token does not open its module.
    assert "not for the module" in _login_refused(
        core, "d1/m1", _token(clock, "d1", identities["d1"])
    )


def test_policy_signed_device_tokens(core: HubCore, clock: FakeClock, identities: dict) -> None:
    for policy in ("device", "iothubowner"):
        key = core.policy_keys(policy)[0]
        token = _token(clock, "d1/m1", key, policy=policy)
        assert _login(core, "d1/m1", token) == Identity("d1", "m1", policy)
    # A token for the device covers its modules when policy-signed (segment prefix, D.3).
    key = core.policy_keys("device")[0]
    assert _login(core, "d1/m1", _token(clock, "d1", key, policy="device"))
    service_key = core.policy_keys("service")[0]
    message = _login_refused(core, "d1", _token(clock, "d1", service_key, policy="service"))
    assert message == "Policy 'service' lacks the Device Connect permission."


def test_refusals(core: HubCore, clock: FakeClock, identities: dict) -> None:
    key = identities["d1"]
    expired = _token(clock, "d1", key, ttl=-1)
    assert "expired" in _login_refused(core, "d1", expired)
    assert "not registered" in _login_refused(core, "d2", _token(clock, "d2", key))
    assert "not registered" in _login_refused(core, "d1/m9", _token(clock, "d1/m9", key))
    assert "no password" in _login_refused(core, "d1", None)
    assert "not a valid" in _login_refused(core, "d1", "garbage")
    assert "client id" in _login_refused(core, "d1/m1/x", _token(clock, "d1", key))
    with pytest.raises(AuthError, match="username"):
        core.authenticate_device("d1", "localhost/d2/?api-version=1", _token(clock, "d1", key))
    # Loose username parsing: no query, or no username at all, is fine.
    assert core.authenticate_device("d1", "localhost/d1/", _token(clock, "d1", key))
    assert core.authenticate_device("d1", None, _token(clock, "d1", key))


def test_disabled_device_and_its_modules_are_refused(
    core: HubCore, clock: FakeClock, identities: dict
) -> None:
    core.put_device("d1", {**sas_body(), "status": "disabled"}, "*")
    assert "disabled" in _login_refused(core, "d1", _token(clock, "d1", identities["d1"]))
    assert "disabled" in _login_refused(core, "d1/m1", _token(clock, "d1/m1", identities["d1/m1"]))


def test_x509_identity_without_password_is_refused_clearly(core: HubCore) -> None:
    body = {"authentication": {"type": "certificateAuthority"}}
    core.put_device("x1", body, None)
    assert "X.509" in _login_refused(core, "x1", None)


def test_auth_error_is_a_hub_error() -> None:
    assert issubclass(AuthError, HubError)
