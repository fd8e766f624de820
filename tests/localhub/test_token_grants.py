"""Tokens presented on a connection (AMQP CBS put-token, SASL PLAIN): what the core grants."""

from __future__ import annotations

import pytest

from tests.localhub.conftest import FakeClock, sas_body
from twin_explorer.connection.sas import (
    device_resource_uri,
    generate_device_token,
    generate_key,
    generate_service_token,
)
from twin_explorer.localhub.core.auth import Identity, Right
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import AuthError


@pytest.fixture
def keys(core: HubCore) -> dict[str, str]:
    device, module = generate_key(), generate_key()
    core.put_device("d1", {"status": "enabled", **sas_body(device)}, None)
    core.put_module("d1", "m1", sas_body(module), None)
    return {"d1": device, "d1/m1": module}


def test_a_module_token_speaks_as_that_module(core, clock, keys) -> None:
    token = generate_device_token(
        device_resource_uri("localhost:5671", "d1", "m1"), keys["d1/m1"], now=clock.seconds
    )
    grant = core.authenticate_token(token)
    assert grant.identity == Identity("d1", "m1")
    assert grant.rights == frozenset({Right.DEVICE_CONNECT})
    assert grant.expiry > clock.seconds


def test_a_device_token_does_not_open_its_modules_and_a_wrong_key_is_refused(
    core, clock, keys
) -> None:
    with pytest.raises(AuthError, match="wrong key"):
        core.authenticate_token(
            generate_device_token(
                device_resource_uri("localhost", "d1", "m1"), keys["d1"], now=clock.seconds
            )
        )
    with pytest.raises(AuthError, match="expired"):
        core.authenticate_token(
            generate_device_token(
                device_resource_uri("localhost", "d1"), keys["d1"], ttl=10, now=clock.seconds - 20
            )
        )


@pytest.mark.parametrize("host", ["localhost", "localhost:8443", "https://localhost"])
def test_a_hub_wide_token_grants_its_policy(core: HubCore, clock: FakeClock, host: str) -> None:
    key = core.policy_keys("service")[0]
    token = generate_service_token(host, "service", key, now=clock.seconds)
    grant = core.authenticate_token(token)
    assert grant.identity is None and grant.policy == "service"
    assert Right.SERVICE_CONNECT in grant.rights


def test_hub_wide_tokens_for_another_hub_or_without_a_policy_are_refused(
    core: HubCore, clock: FakeClock
) -> None:
    key = core.policy_keys("service")[0]
    with pytest.raises(AuthError, match="not for this hub"):
        core.authenticate_token(
            generate_service_token("other.example", "service", key, now=clock.seconds)
        )
    with pytest.raises(AuthError, match="wrong key"):
        core.authenticate_token(
            generate_service_token("localhost", "iothubowner", key, now=clock.seconds)
        )
    with pytest.raises(AuthError, match="not a valid"):
        core.authenticate_token("Bearer abc")
