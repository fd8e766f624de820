"""Fuzzing the device telemetry batch body (``application/vnd.microsoft.iothub.json``):
whatever the bytes, the hub either keeps every message of the batch as sent or answers
one 400/413 HubError and keeps none. Bounded in size and time."""

from __future__ import annotations

import base64
import contextlib
import json
import time

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twin_explorer.localhub.core.auth import Identity
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError
from twin_explorer.localhub.transports.rest.device import parse_batch

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_names = st.sampled_from(
    ["iothub-app-a", "IoTHub-App-B", "iothub-messageid", "iothub-to", "dt-subject", "x"]
) | st.text(max_size=6)
_base64 = st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
_valid = st.one_of(
    st.fixed_dictionaries(
        {"body": _base64},
        optional={
            "base64Encoded": st.just(True),
            "properties": st.dictionaries(_names, st.text(max_size=8), max_size=4),
        },
    ),
    st.fixed_dictionaries({"body": st.text(max_size=12), "base64Encoded": st.just(False)}),
)
_wild = st.fixed_dictionaries(
    {"body": _base64 | st.text(max_size=12) | _json},
    optional={
        "base64Encoded": st.booleans() | _json,
        "properties": st.dictionaries(_names, st.text(max_size=8) | _json, max_size=4) | _json,
    },
)
_message = st.one_of(_valid, _valid, _valid, _wild, _json)
_batch = st.lists(_message | _json, max_size=12).map(lambda items: json.dumps(items).encode())
# Raw bytes too, and valid batches cut or corrupted at a random place.
_raw = st.binary(max_size=200) | st.tuples(_batch, st.integers(0, 400), st.binary(max_size=3)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
)


@settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=_batch | _raw)
def test_batch_body_fuzz(core: HubCore, raw: bytes) -> None:
    with contextlib.suppress(HubError):  # made by an earlier example
        core.put_device("fz", {"authentication": {"type": "sas", "symmetricKey": {}}}, None)
    before = core.telemetry_count("fz")
    started = time.monotonic()
    try:
        messages = parse_batch(raw)
        core.device_messages.send_events(Identity("fz", None), messages)
    except HubError as error:
        event(f"refused {error.status}")
        assert error.status in (400, 413), error
        assert error.message
        core.flush()
        assert core.telemetry_count("fz") == before  # all or nothing
    else:
        event("kept")
        core.flush()
        kept = core.telemetry("fz", limit=len(messages)) if messages else []
        assert core.telemetry_count("fz") == before + len(messages)
        assert [m["body"] for m in kept] == [m.body for m in messages]
        for message in messages:
            assert all(isinstance(v, str) for v in message.properties.values())
    assert time.monotonic() - started < 1.0
