"""Error values and the envelopes the shells send (B.7, A.7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from twin_explorer.localhub import errors
from twin_explorer.localhub.errors import AuthError, HubError

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def test_rest_envelope() -> None:
    body = errors.device_not_found("d1").to_body(WHEN)
    assert body["Message"] == "ErrorCode:DeviceNotFound;Device 'd1' is not registered."
    assert re.fullmatch(
        r"Tracking ID:[0-9a-f]{32}-TimeStamp:03/04/2026 05:06:07", body["ExceptionMessage"]
    )


def test_device_envelope() -> None:
    body = errors.argument_invalid("bad json").to_device_body(WHEN)
    assert body["errorCode"] == 400004
    assert body["message"] == "bad json"
    assert body["timestampUtc"] == "2026-03-04T05:06:07.890000Z"
    assert re.fullmatch(r"[0-9a-f]{32}", body["trackingId"])


def test_every_factory_matches_the_b7_table() -> None:
    made = [
        errors.argument_invalid("x"),
        errors.unauthorized("x"),
        errors.device_not_found("d"),
        errors.module_not_found("d", "m"),
        errors.device_not_online(),
        errors.device_already_exists("d"),
        errors.module_already_exists("d", "m"),
        errors.precondition_failed("twin", "a", "b"),
        errors.too_many_modules("d", 50),
        errors.throttled(),
        errors.gateway_timeout(),
        errors.too_many_devices(101, 100),
        errors.device_defined_multiple_times("d"),
        errors.invalid_device_scope("x"),
    ]
    assert {e.error_code: (e.status, e.numeric) for e in made} == errors.CODES
    assert all(isinstance(e, HubError) and str(e) == e.message for e in made)
    assert isinstance(errors.unauthorized("x"), AuthError)


def test_invalid_twin_names_each_issue() -> None:
    class Issue:
        def __init__(self, path: tuple[str, ...], message: str) -> None:
            self.path, self.message = path, message

    error = errors.invalid_twin(
        [Issue(("desired", "a b"), "spaces are not allowed"), Issue((), "x")]
    )
    assert error.status == 400
    assert error.message == "Invalid twin: desired.a b: spaces are not allowed; x"
