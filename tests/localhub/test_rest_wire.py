"""The REST API on the wire: exact status codes, headers and bodies (B.3-B.7), and
garbage in -> 400 out, with the server still serving afterwards."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest

from twin_explorer.localhub.core.hub import HubCore

JSON_TYPE = "application/json; charset=utf-8"
DEVICE = {"deviceId": "d1", "authentication": {"type": "sas", "symmetricKey": {}}}
MODULE = {"deviceId": "d1", "moduleId": "m1", "authentication": {"type": "sas"}}


async def _assert_error(response: tuple, status: int, code: str, *words: str) -> dict:
    got_status, headers, body = response
    assert got_status == status, body
    assert headers["Content-Type"] == JSON_TYPE
    assert headers["iothub-errorcode"] == code
    envelope = json.loads(body)
    assert envelope["Message"].startswith(f"ErrorCode:{code};")
    assert envelope["ExceptionMessage"].startswith("Tracking ID:")
    for word in words:
        assert word in envelope["Message"], envelope["Message"]
    return envelope


async def test_status_codes_match_what_the_sdk_accepts(hub_rest):
    status, headers, body = await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    assert status == 200  # create: 200, never 201 (B.4)
    assert headers["Content-Type"] == JSON_TYPE
    created = json.loads(body)
    assert created["deviceId"] == "d1" and created["authentication"]["symmetricKey"]["primaryKey"]

    update = {**created, "status": "disabled"}
    status, updated = await hub_rest.json(
        "PUT", "/devices/d1", json_body=update, headers={"If-Match": '"*"'}
    )
    assert status == 200 and updated["status"] == "disabled"
    await _assert_error(
        await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE), 409, "DeviceAlreadyExists"
    )

    status, module = await hub_rest.json("PUT", "/devices/d1/modules/m1", json_body=MODULE)
    assert status == 201  # module create: 201; update: 200
    status, _ = await hub_rest.json(
        "PUT",
        "/devices/d1/modules/m1",
        json_body=module,
        headers={"If-Match": f'"{module["etag"]}"'},
    )
    assert status == 200

    for path in ("/devices/d1/modules/m1", "/devices/d1"):
        status, headers, body = await hub_rest.request("DELETE", path)
        assert (status, body) == (204, b"")
    status, devices = await hub_rest.json("GET", "/devices")
    assert (status, devices) == (200, [])


async def test_if_match_is_passed_through(hub_rest):
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    _, twin = await hub_rest.json("GET", "/twins/d1")
    patch = {"tags": {"n": 1}}
    for if_match in (f'"{twin["etag"]}"', "*", '"*"'):
        status, twin = await hub_rest.json(
            "PATCH", "/twins/d1", json_body=patch, headers={"If-Match": if_match}
        )
        assert status == 200, if_match
    response = await hub_rest.request(
        "PATCH", "/twins/d1", json_body=patch, headers={"If-Match": '"AAAAAAAAAAE="'}
    )
    await _assert_error(response, 412, "PreconditionFailed")


async def test_top_and_api_versions(hub_rest):
    for name in ("a", "b", "c"):
        await hub_rest.request("PUT", f"/devices/{name}", json_body={"deviceId": name})
    status, devices = await hub_rest.json("GET", "/devices?top=2")
    assert status == 200 and len(devices) == 2
    # Other api-versions, or none, are served the same way.
    for version in ("2020-05-31-preview", None):
        status, devices = await hub_rest.json("GET", "/devices", api_version=version)
        assert status == 200 and len(devices) == 3
    await _assert_error(await hub_rest.request("GET", "/devices?top=many"), 400, "ArgumentInvalid")


async def test_query_paging_headers(hub_server, hub_rest):
    for index in range(5):
        hub_server.core.put_device(f"q{index}", {"deviceId": f"q{index}"}, None)
    query = {"query": "SELECT * FROM devices"}
    status, headers, body = await hub_rest.request(
        "POST", "/devices/query", json_body=query, headers={"x-ms-max-item-count": "3"}
    )
    assert status == 200 and headers["x-ms-item-type"] == "twin"
    assert len(json.loads(body)) == 3
    token = headers["x-ms-continuation"]
    status, headers, body = await hub_rest.request(
        "POST", "/devices/query", json_body=query, headers={"x-ms-continuation": token}
    )
    assert status == 200 and len(json.loads(body)) == 2
    assert "x-ms-continuation" not in headers  # last page: no header (C.8)

    status, headers, body = await hub_rest.request(
        "POST", "/devices/query", json_body={"query": "SELECT COUNT() AS n FROM devices"}
    )
    assert (status, headers["x-ms-item-type"], json.loads(body)) == (200, "raw", [{"n": 5}])

    for bad_headers in ({"x-ms-max-item-count": "lots"}, {"x-ms-continuation": "not-a-token"}):
        response = await hub_rest.request(
            "POST", "/devices/query", json_body=query, headers=bad_headers
        )
        await _assert_error(response, 400, "ArgumentInvalid")


async def test_rest_and_core_continuation_tokens_are_interchangeable(
    hub_server, hub_rest, tmp_path
):
    # REST runs query pages on its own thread and connection; the pages and tokens must
    # be exactly those of HubCore.query.
    for index in range(5):
        hub_server.core.put_device(f"t{index}", {"deviceId": f"t{index}"}, None)
    text = "SELECT * FROM devices"
    core_page = hub_server.core.query(text, 2, None)
    status, headers, body = await hub_rest.request(
        "POST",
        "/devices/query",
        json_body={"query": text},
        headers={"x-ms-continuation": core_page.continuation, "x-ms-max-item-count": "2"},
    )
    assert status == 200 and [twin["deviceId"] for twin in json.loads(body)] == ["t2", "t3"]
    following = hub_server.core.query(text, 2, headers["x-ms-continuation"])
    assert [twin["deviceId"] for twin in following.items] == ["t4"]
    # A token another hub issued (another key) is refused.
    with HubCore.open(tmp_path / "other") as other:
        for index in range(3):
            other.put_device(f"t{index}", {"deviceId": f"t{index}"}, None)
        foreign = other.query(text, 2, None).continuation
    response = await hub_rest.request(
        "POST", "/devices/query", json_body={"query": text}, headers={"x-ms-continuation": foreign}
    )
    await _assert_error(response, 400, "ArgumentInvalid")


async def test_statistics_routes(hub_rest):
    status, body = await hub_rest.json("GET", "/statistics/devices")
    assert (status, body) == (
        200,
        {"totalDeviceCount": 0, "enabledDeviceCount": 0, "disabledDeviceCount": 0},
    )
    status, body = await hub_rest.json("GET", "/statistics/service")
    assert (status, body) == (200, {"connectedDeviceCount": 0})


GARBAGE = [
    ("PUT", "/devices/d9", b"{not json", "not valid JSON"),
    ("PUT", "/devices/d9", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("PUT", "/devices/d9", b"", "empty"),
    ("PUT", "/devices/d9", b"[1, 2, 3]", ""),
    ("PUT", "/devices/d9", b'{"deviceId": "d9", "status": 5}', ""),
    ("PUT", "/devices/d9", b'{"deviceId": "other"}', ""),
    ("PUT", "/devices/d9", b'{"deviceId": "d9", "authentication": "sas"}', ""),
    ("PUT", "/devices/d9", b'{"deviceId": NaN}', "not valid JSON"),
    ("PUT", "/devices/d9", b"[" * 100_000 + b"]" * 100_000, "nested"),
    ("PUT", "/devices/d9", b'{"a":' * 200 + b"1" + b"}" * 200, "nested"),
    ("PUT", "/devices/d9", b"1" * 5000, "not valid JSON"),
    ("PATCH", "/twins/d1", b'"just a string"', "JSON object"),
    ("PATCH", "/twins/d1", b'{"tags": [1, 2]}', ""),
    ("PATCH", "/twins/d1", b'{"properties": "desired"}', ""),
    ("PUT", "/twins/d1", b"null", "JSON object"),
    ("PUT", "/devices/d1/modules/m9", b'{"moduleId": 7}', ""),
    ("POST", "/devices/query", b'["SELECT * FROM devices"]', "JSON object"),
    ("POST", "/devices/query", b'{"query": 42}', ""),
    ("POST", "/devices/query", b'{"query": "SELECT FROM WHERE"}', ""),
    ("POST", "/twins/d1/methods", b'{"payload": 1}', "methodName"),
    ("POST", "/twins/d1/methods", b'{"methodName": ""}', "methodName"),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "responseTimeoutInSeconds": 4}', "5"),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "responseTimeoutInSeconds": 301}', "300"),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "responseTimeoutInSeconds": "30"}', ""),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "responseTimeoutInSeconds": 7.5}', ""),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "connectTimeoutInSeconds": -1}', "0"),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "connectTimeoutInSeconds": 301}', "300"),
    ("POST", "/twins/d1/methods", b'{"methodName": "m", "connectTimeoutInSeconds": true}', ""),
    (
        "POST",
        "/twins/d1/methods",
        b'{"methodName": "m", "payload": "' + b"x" * 140_000 + b'"}',
        "payload",
    ),
]


async def test_garbage_bodies_are_400_and_the_server_keeps_serving(hub_rest):
    # One hub for all cases: each must leave it serving for the next.
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    for method, path, body, words in GARBAGE:
        case = f"{method} {path} {body[:60]!r}"
        response = await hub_rest.request(method, path, data=body)
        try:
            await _assert_error(response, 400, "ArgumentInvalid", *filter(None, [words]))
        except AssertionError as exc:
            raise AssertionError(f"{case}: {exc}") from None
        status, twin = await hub_rest.json("GET", "/twins/d1")
        assert status == 200 and twin["deviceId"] == "d1", case
    status, devices = await hub_rest.json("GET", "/devices")
    assert [device["deviceId"] for device in devices] == ["d1"]  # nothing half-created


async def test_huge_body_is_400(hub_rest):
    huge = json.dumps({"deviceId": "d9", "tags": {"x": "y" * (2 << 20)}}).encode()
    response = await hub_rest.request("PUT", "/devices/d9", data=huge)
    await _assert_error(response, 400, "ArgumentInvalid", "larger than")
    status, _ = await hub_rest.json("GET", "/devices")
    assert status == 200


def _nested(levels: int) -> dict:
    """Objects ``levels`` deep below the section root: {"l1": {"l2": ... {"leaf": 1}}}."""
    value: dict = {"leaf": 1}
    for level in range(levels, 0, -1):
        value = {f"l{level}": value}
    return value


@pytest.mark.parametrize(
    ("desired", "words"),
    [
        ({"bad.key": 1}, "bad.key"),
        ({"$custom": 1}, "$custom"),
        ({"bad key": 1}, "bad key"),
        (_nested(11), "l11"),  # an object 11 levels below desired (C.6 allows 10)
        ({f"k{index}": "v" * 1000 for index in range(40)}, "32"),
        ({"big": 2**60}, "big"),
    ],
)
async def test_invalid_twins_are_400_with_the_reason(hub_rest, desired, words):
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    response = await hub_rest.request(
        "PATCH", "/twins/d1", json_body={"properties": {"desired": desired}}
    )
    await _assert_error(response, 400, "ArgumentInvalid", words)
    _, twin = await hub_rest.json("GET", "/twins/d1")
    assert twin["properties"]["desired"]["$version"] == 1  # nothing was applied


async def test_ten_levels_are_fine(hub_rest):
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    status, twin = await hub_rest.json(
        "PATCH", "/twins/d1", json_body={"properties": {"desired": _nested(10)}}
    )
    assert status == 200 and twin["properties"]["desired"]["l1"]["l2"]


async def test_unknown_routes_and_methods(hub_rest):
    await _assert_error(await hub_rest.request("GET", "/nowhere"), 404, "NotFound")
    await _assert_error(await hub_rest.request("GET", "/devices/d1/extra/x"), 404, "NotFound")
    await _assert_error(
        await hub_rest.request("POST", "/statistics/devices"), 405, "MethodNotAllowed"
    )


async def test_method_errors_use_the_nested_envelope(hub_rest):
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    status, headers, body = await hub_rest.request(
        "POST",
        "/twins/d1/methods",
        json_body={"methodName": "reboot", "payload": "", "connectTimeoutInSeconds": 3},
    )
    assert status == 404 and headers["iothub-errorcode"] == "DeviceNotOnline"
    envelope = json.loads(body)
    assert envelope["ExceptionMessage"] == ""
    inner = json.loads(envelope["Message"])  # B.7: JSON, as a string
    assert inner["errorCode"] == 404103
    assert inner["message"] == "Timed out waiting for device to connect."
    assert inner["info"] == {"timeout": "00:00:03"}
    unknown = await hub_rest.request("POST", "/twins/nobody/methods", json_body={"methodName": "m"})
    await _assert_error(unknown, 404, "DeviceNotFound")


async def test_malformed_http_and_tls_do_not_stop_the_server(hub_server, hub_rest):
    port = hub_server.rest_port
    # Not HTTP at all, inside TLS.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=hub_rest.ssl, server_hostname="localhost"
    )
    writer.write(b"\x00\x01garbage\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer == b"" or answer.split(b" ", 2)[1] == b"400"
    writer.close()
    # Plain text to the TLS port: the handshake fails, the connection closes.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /devices HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    # A client that does not trust the CA: rejected on its side, nothing breaks ours.
    with pytest.raises(ssl.SSLError):
        await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl.create_default_context(), server_hostname="localhost"
        )
    status, _ = await hub_rest.json("GET", "/statistics/service")
    assert status == 200


async def test_concurrent_requests(hub_rest):
    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    patches = [
        hub_rest.json("PATCH", "/twins/d1", json_body={"properties": {"desired": {f"k{i}": i}}})
        for i in range(40)
    ]
    results = await asyncio.gather(*patches)
    assert all(status == 200 for status, _ in results)
    _, twin = await hub_rest.json("GET", "/twins/d1")
    assert twin["properties"]["desired"]["$version"] == 41
    assert {f"k{i}" for i in range(40)} <= twin["properties"]["desired"].keys()


async def test_localhub_info_and_telemetry(hub_server, hub_rest):
    status, info = await hub_rest.json("GET", "/_localhub/info")
    assert status == 200
    assert info["hostname"] == "localhost" and info["rest_port"] == hub_server.rest_port
    assert "service_connection_string" not in info  # no secrets on this route

    await hub_rest.request("PUT", "/devices/d1", json_body=DEVICE)
    await hub_rest.request("PUT", "/devices/d1/modules/m1", json_body=MODULE)
    core = hub_server.core
    core.record_telemetry("d1", "m1", {"k": "v"}, {"$.ct": "application/json"}, b'{"t": 1}')
    core.record_telemetry("d1", "m1", {}, {}, b"\xff\x00")
    core.record_telemetry("d1", None, {}, {}, b"device")
    status, body = await hub_rest.json("GET", "/_localhub/telemetry/d1/modules/m1?limit=5")
    assert status == 200 and body["count"] == 2
    first, second = body["messages"]
    assert (first["body"], first["bodyEncoding"], first["properties"]) == (
        '{"t": 1}',
        "utf-8",
        {"k": "v"},
    )
    assert (second["body"], second["bodyEncoding"]) == ("/wA=", "base64")
    status, body = await hub_rest.json("GET", "/_localhub/telemetry/d1?limit=1")
    assert [m["body"] for m in body["messages"]] == ["device"]
    await _assert_error(
        await hub_rest.request("GET", "/_localhub/telemetry/d1/modules/nope"), 404, "ModuleNotFound"
    )
    await _assert_error(
        await hub_rest.request("GET", "/_localhub/telemetry/d1?limit=0"), 400, "ArgumentInvalid"
    )
