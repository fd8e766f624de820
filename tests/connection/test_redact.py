from __future__ import annotations

import base64
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.linear import assert_linear
from twin_explorer.connection.redact import RedactingFilter, install_log_redaction, redact
from twin_explorer.connection.sas import generate_device_token, generate_service_token
from twin_explorer.connection.strings import build_module, parse

KEY = base64.b64encode(bytes(range(250, 256)) + bytes(range(100, 126))).decode()


def test_connection_string_key_is_masked_and_the_rest_stays():
    text = f"HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
    assert redact(text) == (
        "HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey=****"
    )


def test_key_in_the_middle_of_a_string_and_in_a_sentence():
    text = f"connecting with HostName=h;DeviceId=d1;SharedAccessKey={KEY};GatewayHostName=gw now"
    assert redact(text) == (
        "connecting with HostName=h;DeviceId=d1;SharedAccessKey=****;GatewayHostName=gw now"
    )


def test_sas_token_keeps_resource_and_expiry_readable():
    token = generate_service_token("localhost:8443", "iothubowner", KEY, now=1_700_000_011)
    out = redact(f"Authorization: {token}")
    assert out == (
        "Authorization: SharedAccessSignature sr=localhost%3A8443&sig=****"
        "&se=1700003611&skn=iothubowner"
    )


def test_shared_access_signature_value_in_a_connection_string_is_masked_whole():
    token = generate_device_token("h/devices/d1", KEY, now=1_700_000_011)
    text = f"HostName=h;DeviceId=d1;SharedAccessSignature={token};GatewayHostName=gw"
    assert redact(text) == "HostName=h;DeviceId=d1;SharedAccessSignature=****;GatewayHostName=gw"


def test_url_encoded_signature_in_a_query_string():
    assert redact("GET /x?sig%3Dabc%2Bdef%3D&se=1") == "GET /x?sig%3D****&se=1"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}}),
        f"Module(primary_key='{KEY}', secondary_key='{KEY}')",
        f"PRIMARY_KEY={KEY}",
        f"primaryKey: {KEY}",
        f"--key={KEY}",
    ],
)
def test_key_looking_values_after_key_names(text):
    out = redact(text)
    assert KEY not in out
    assert KEY[:16] not in out
    assert "****" in out


def test_ordinary_text_is_left_alone():
    text = "twin of d1/m1 updated: $version 7, keyName=iothubowner, SharedAccessKeyName=service"
    assert redact(text) == text
    assert redact('{"primaryKey": null, "keyCount": 3}') == '{"primaryKey": null, "keyCount": 3}'


_ids = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=64),
    host=_ids,
    device=_ids,
    module=_ids,
    prefix=st.sampled_from(["", "error: ", "cs='", "{'cs': \"", "\n"]),
    suffix=st.sampled_from(["", "'", '"}', ";", " and more", "\n"]),
    form=st.sampled_from(["module", "service", "repr", "str"]),
)
def test_random_key_in_a_connection_string_never_survives(
    key, host, device, module, prefix, suffix, form
):
    key_b64 = base64.b64encode(key).decode()
    if form == "service":
        text = f"HostName={host};SharedAccessKeyName=p;SharedAccessKey={key_b64}"
    else:
        text = build_module(host, device, module, key_b64)
        if form == "repr":
            text = repr(parse(text))
    out = redact(prefix + text + suffix)
    assert key_b64 not in out
    assert key_b64.rstrip("=") not in out
    assert host in out  # the rest stays readable


def _record(msg, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_redacts_message_and_args():
    cs = f"HostName=h;SharedAccessKeyName=p;SharedAccessKey={KEY}"
    record = _record("using %s for %s", cs, "h")
    assert RedactingFilter().filter(record) is True
    assert (
        record.getMessage() == "using HostName=h;SharedAccessKeyName=p;SharedAccessKey=**** for h"
    )
    assert record.args is None


def test_filter_redacts_objects_whose_str_holds_a_secret():
    class Leaky:
        def __str__(self) -> str:
            return f"SharedAccessKey={KEY}"

    record = _record("value: %s", Leaky())
    RedactingFilter().filter(record)
    assert KEY not in record.getMessage()


def test_filter_redacts_exception_text():
    try:
        raise ValueError(f"bad HostName=h;DeviceId=d;SharedAccessKey={KEY}")
    except ValueError:
        import sys

        record = _record("failed", exc_info=sys.exc_info())
    RedactingFilter().filter(record)
    rendered = logging.Formatter().format(record)
    assert "ValueError" in rendered
    assert KEY not in rendered


def test_filter_survives_a_broken_format_string():
    record = _record(f"SharedAccessKey={KEY} %d", "not a number")
    assert RedactingFilter().filter(record) is True
    assert KEY not in str(record.msg)


def test_install_on_root_handlers_covers_child_loggers(caplog):
    root = logging.getLogger()
    handler = caplog.handler
    try:
        installed = install_log_redaction()
        assert installed in handler.filters
        assert install_log_redaction() is installed  # idempotent
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        with caplog.at_level(logging.INFO):
            logging.getLogger("twin_explorer.some.child").info(
                "connecting %s", f"HostName=h;DeviceId=d;SharedAccessKey={KEY}"
            )
        assert caplog.records
        assert KEY not in caplog.text
        assert "SharedAccessKey=****" in caplog.text
    finally:
        for filterer in (root, *root.handlers):
            for f in list(filterer.filters):
                if isinstance(f, RedactingFilter):
                    filterer.removeFilter(f)


def test_install_on_a_given_logger():
    logger = logging.getLogger("twin_explorer.test.redact")
    handler = logging.Handler()
    logger.addHandler(handler)
    try:
        installed = install_log_redaction(logger)
        assert installed in logger.filters and installed in handler.filters
        assert installed not in logging.getLogger().filters
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(installed)


# Shapes that make a backtracking pattern rescan the rest of the line from every position.
_LONG_LINES = {
    "word": lambda n: "refused " + repr("a" * n),
    "keys": lambda n: "key" * (n // 3),
    "key names": lambda n: ("primaryKey" + "_" * 20) * (n // 30),
    "key then spaces": lambda n: "key" + " " * n,
    "signatures": lambda n: "sig=" * (n // 4),
    "connection strings": lambda n: "SharedAccessSignature" * (n // 21),
    "base64": lambda n: "primaryKey=" + "A" * n,
    "mixed": lambda n: "device-1/m:key=abc sig%3D SharedAccessKey " * (n // 40),
    "jwt starts": lambda n: "eyJ-" * (n // 4),
    "jwt parts": lambda n: "eyJabcdefgh." * (n // 12),
    "oauth names": lambda n: "refresh_token" * (n // 13),
}


@pytest.mark.parametrize("shape", sorted(_LONG_LINES))
def test_redaction_time_per_byte_is_flat_from_1_kb_to_1_mb(shape):
    assert_linear(redact, _LONG_LINES[shape], what=f"redacting {shape}")


def test_a_key_after_a_megabyte_of_text_is_still_masked():
    line = "x" * (1 << 20) + f" primaryKey={KEY} " + "y" * 1000
    out = redact(line)
    assert KEY not in out and "primaryKey=****" in out


def _jwt() -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"aud": "https://iothubs.azure.net", "oid": "x"}, key, "RS256")


def test_entra_tokens_and_secrets_are_masked():
    token = _jwt()
    answer = json.dumps(
        {"token_type": "Bearer", "access_token": token, "refresh_token": "0.AXoAopaque-rt"}
    )
    for text in (
        f"Authorization: Bearer {token}",
        f"put-token jwt {token} for amqps://hub/$iothub",
        answer,
        "client_id=abc&client_secret=s3cr3t~value&scope=x",
        "device_code='GAAB-opaque-code' user_code=ABCD",
    ):
        out = redact(text)
        for secret in (token, "0.AXoAopaque-rt", "s3cr3t~value", "GAAB-opaque-code"):
            assert secret not in out, out
    assert redact(answer).startswith('{"token_type": "Bearer", "access_token": "****"')
    assert "client_id=abc" in redact("client_id=abc&client_secret=s&scope=x")
