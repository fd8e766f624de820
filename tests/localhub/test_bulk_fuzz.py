"""Fuzzing the bulk registry body (``POST /devices``) at the core: whatever the entries,
the hub answers with per-entry errors or one 400/413 HubError, never anything else, and
the registry stays whole (every device keeps its twin). Bounded in size and time."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin_explorer.localhub.core.bulk_registry import MAX_BULK_DEVICES, ImportMode
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_ids = st.sampled_from(["a", "b", "c", "d", "e", "f", "bad/id", "", "x" * 129]) | st.text(
    max_size=6
)
_modes = st.sampled_from([mode.value for mode in ImportMode]).flatmap(
    lambda mode: st.sampled_from([mode, mode.upper(), mode.capitalize()])
) | st.text(max_size=10)
_entry = st.fixed_dictionaries(
    {"id": _ids | _json, "importMode": _modes | _json},
    optional={
        "eTag": st.sampled_from(["MQ==", "Mg==", "*", ""]) | _json,
        "twinETag": st.sampled_from(["AAAAAAAAAAE=", "*"]) | _json,
        "status": st.sampled_from(["enabled", "disabled", "Enabled", "off"]) | _json,
        "statusReason": _json,
        "authentication": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["sas", "selfSigned", "certificateAuthority", "none", "x"]),
                "symmetricKey": _json,
                "x509Thumbprint": _json,
            },
        )
        | _json,
        "capabilities": st.fixed_dictionaries({"iotEdge": st.booleans() | _json}) | _json,
        "deviceScope": st.sampled_from(["ms-azure-iot-edge://a-1", ""]) | _json,
        "parentScopes": st.lists(st.text(max_size=30), max_size=2) | _json,
        "tags": _json,
        "properties": st.fixed_dictionaries({"desired": _json}) | _json,
        "moduleId": st.none() | st.text(max_size=3),
    },
)
_body = st.lists(_entry | _json, max_size=MAX_BULK_DEVICES + 5)


@settings(
    max_examples=120,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=_body)
def test_bulk_body_fuzz(core: HubCore, entries: list) -> None:
    started = time.monotonic()
    try:
        errors = core.bulk_registry(entries)
    except HubError as error:
        assert error.status in (400, 413), error
    else:
        assert len(errors) <= len(entries)
        for error in errors:
            assert error.device_id is None or isinstance(error.device_id, str)
            assert error.error_code and error.message
    assert time.monotonic() - started < 1.0
    for device in core.list_devices():
        assert core.get_twin(device["deviceId"], None)["deviceId"] == device["deviceId"]
