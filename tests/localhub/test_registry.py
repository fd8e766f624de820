"""Device and module CRUD through the core, with every status of B.4/B.7."""

from __future__ import annotations

import base64

import pytest

from tests.localhub.conftest import sas_body
from twin_explorer.localhub.core.context import RemovalReason
from twin_explorer.localhub.core.hub import HubCore
from twin_explorer.localhub.errors import HubError

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


def _error(exc: pytest.ExceptionInfo[HubError]) -> tuple[int, str, int]:
    return exc.value.status, exc.value.error_code, exc.value.numeric


def test_create_device_returns_the_full_document(core: HubCore) -> None:
    device = core.put_device("dev-1+x", {"deviceId": "dev-1+x", **sas_body(KEY_A, KEY_B)}, None)
    assert device["deviceId"] == "dev-1+x"
    assert device["status"] == "enabled"
    assert device["connectionState"] == "Disconnected"
    assert device["lastActivityTime"] == "0001-01-01T00:00:00Z"
    assert device["cloudToDeviceMessageCount"] == 0
    assert device["capabilities"] == {"iotEdge": False}
    assert device["authentication"] == {
        "symmetricKey": {"primaryKey": KEY_A, "secondaryKey": KEY_B},
        "x509Thumbprint": {"primaryThumbprint": None, "secondaryThumbprint": None},
        "type": "sas",
    }
    assert len(device["generationId"]) == 18 and device["generationId"].isdigit()
    assert base64.b64decode(device["etag"]).decode().isdigit()
    assert core.get_device("dev-1+x") == device


def test_create_twice_is_409(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    with pytest.raises(HubError) as exc:
        core.put_device("d1", sas_body(), None)
    assert _error(exc) == (409, "DeviceAlreadyExists", 409001)


@pytest.mark.parametrize("quote", ['"{}"', "{}", 'W/"{}"', ' "{}" '])
def test_update_with_current_etag_in_any_quoting(core: HubCore, quote: str) -> None:
    created = core.put_device("d1", sas_body(), None)
    updated = core.put_device(
        "d1", {**sas_body(), "status": "disabled"}, quote.format(created["etag"])
    )
    assert updated["status"] == "disabled"
    assert updated["etag"] != created["etag"]
    assert updated["generationId"] == created["generationId"]
    assert updated["statusUpdatedTime"] != "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("wildcard", ["*", '"*"'])
def test_wildcard_if_match_updates_whatever_the_etag(core: HubCore, wildcard: str) -> None:
    core.put_device("d1", sas_body(), None)
    core.put_device("d1", sas_body(), "*")
    updated = core.put_device("d1", {**sas_body(), "statusReason": "why"}, wildcard)
    assert updated["statusReason"] == "why"


def test_stale_etag_is_412(core: HubCore) -> None:
    first = core.put_device("d1", sas_body(), None)
    core.put_device("d1", sas_body(), f'"{first["etag"]}"')
    with pytest.raises(HubError) as exc:
        core.put_device("d1", sas_body(), f'"{first["etag"]}"')
    assert _error(exc) == (412, "PreconditionFailed", 412001)
    with pytest.raises(HubError) as exc:
        core.delete_device("d1", f'"{first["etag"]}"')
    assert exc.value.status == 412
    assert core.get_device("d1")


def test_update_or_delete_of_an_absent_device_is_404(core: HubCore) -> None:
    for call in (
        lambda: core.put_device("nope", sas_body(), '"*"'),
        lambda: core.get_device("nope"),
        lambda: core.delete_device("nope", '"*"'),
        lambda: core.delete_device("nope", None),
        lambda: core.get_twin("nope"),
        lambda: core.list_modules("nope"),
        lambda: core.put_module("nope", "m", {}, None),
    ):
        with pytest.raises(HubError) as exc:
            call()
        assert _error(exc) == (404, "DeviceNotFound", 404001)


def test_update_keeps_keys_when_the_body_has_none(core: HubCore) -> None:
    created = core.put_device("d1", sas_body(KEY_A, KEY_B), None)
    updated = core.put_device("d1", sas_body(), "*")
    assert updated["authentication"] == created["authentication"]


def test_missing_keys_are_generated(core: HubCore) -> None:
    device = core.put_device("d1", sas_body(), None)
    keys = device["authentication"]["symmetricKey"]
    assert len(base64.b64decode(keys["primaryKey"])) == 32
    assert len(base64.b64decode(keys["secondaryKey"])) == 32
    assert keys["primaryKey"] != keys["secondaryKey"]
    half = core.put_device("d2", {"authentication": {"symmetricKey": {"primaryKey": KEY_A}}}, None)
    assert half["authentication"]["symmetricKey"]["primaryKey"] == KEY_A
    assert half["authentication"]["symmetricKey"]["secondaryKey"]
    assert half["authentication"]["type"] == "sas"


def test_self_signed_thumbprints_are_normalized(core: HubCore) -> None:
    body = {
        "authentication": {
            "type": "selfSigned",
            "x509Thumbprint": {"primaryThumbprint": "ab:" * 19 + "ab", "secondaryThumbprint": None},
        },
    }
    device = core.put_device("x1", body, None)
    assert device["authentication"] == {
        "symmetricKey": {"primaryKey": None, "secondaryKey": None},
        "x509Thumbprint": {"primaryThumbprint": "AB" * 20, "secondaryThumbprint": None},
        "type": "selfSigned",
    }
    ca = core.put_device("x2", {"authentication": {"type": "certificateAuthority"}}, None)
    assert ca["authentication"]["symmetricKey"] == {"primaryKey": None, "secondaryKey": None}
    assert core.get_twin("x2")["authenticationType"] == "certificateAuthority"


@pytest.mark.parametrize(
    "body",
    [
        {"authentication": {"type": "selfSigned", "x509Thumbprint": {"primaryThumbprint": "zz"}}},
        {"authentication": {"type": "selfSigned"}},
        {"authentication": {"type": "password"}},
        {"authentication": {"symmetricKey": {"primaryKey": "not base64!"}}},
        {"authentication": {"symmetricKey": {"primaryKey": base64.b64encode(b"x").decode()}}},
        {"status": "sleeping"},
        {"statusReason": "x" * 129},
        {"deviceId": "other"},
        {"capabilities": {"iotEdge": "yes"}},
        {"parentScopes": [1]},
        [],
    ],
)
def test_bad_device_bodies_are_400(core: HubCore, body: object) -> None:
    with pytest.raises(HubError) as exc:
        core.put_device("d1", body, None)
    assert _error(exc) == (400, "ArgumentInvalid", 400004)
    assert core.registry_statistics()["totalDeviceCount"] == 0


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 129, "spaces are bad", "é", "a&b"])
def test_invalid_ids_are_400(core: HubCore, bad: str) -> None:
    with pytest.raises(HubError) as exc:
        core.put_device(bad, sas_body(), None)
    assert exc.value.status == 400
    core.put_device("ok", sas_body(), None)
    with pytest.raises(HubError) as exc:
        core.put_module("ok", bad, {}, None)
    assert exc.value.status == 400


def test_every_allowed_id_character_works(core: HubCore) -> None:
    odd = "a-:.+%_#*?!(),=@;$'Z9"
    assert core.put_device(odd, sas_body(), None)["deviceId"] == odd
    assert core.put_device("x" * 128, sas_body(), None)
    assert core.put_module(odd, odd, {}, None)[0]["moduleId"] == odd


def test_edge_device_gets_a_scope(core: HubCore) -> None:
    device = core.put_device("edge", {"capabilities": {"iotEdge": True}}, None)
    assert device["deviceScope"] == f"ms-azure-iot-edge://edge-{device['generationId']}"
    leaf = core.put_device(
        "leaf", {"deviceScope": device["deviceScope"], "parentScopes": device["deviceScope"]}, None
    )
    assert leaf["parentScopes"] == [device["deviceScope"]]
    twin = core.get_twin("edge")
    assert twin["capabilities"] == {"iotEdge": True}
    assert twin["deviceScope"] == device["deviceScope"]


def test_delete_device_cascades_and_notifies(core: HubCore) -> None:
    removed: list[tuple] = []
    core.on_identity_removed(lambda d, m, why: removed.append((d, m, why)))
    core.put_device("d1", sas_body(), None)
    core.put_module("d1", "m1", {}, None)
    core.delete_device("d1", None)
    assert removed == [("d1", None, RemovalReason.DELETED)]
    with pytest.raises(HubError):
        core.get_twin("d1", "m1")
    # Re-creating gives fresh identities: new generation, empty twins.
    again = core.put_device("d1", sas_body(), None)
    assert core.list_modules("d1") == []
    assert core.get_twin("d1")["version"] == 1
    assert again["deviceId"] == "d1"


def test_delete_with_matching_etag(core: HubCore) -> None:
    device = core.put_device("d1", sas_body(), None)
    core.delete_device("d1", f'"{device["etag"]}"')
    assert core.list_devices() == []


def test_disable_and_key_change_notify_listeners(core: HubCore) -> None:
    removed: list[tuple] = []
    core.on_identity_removed(lambda d, m, why: removed.append((d, m, why)))
    core.put_device("d1", sas_body(KEY_A, KEY_B), None)
    core.put_device("d1", {**sas_body(KEY_A, KEY_B), "statusReason": "note"}, "*")
    assert removed == []
    core.put_device("d1", sas_body(KEY_B, KEY_A), "*")
    core.put_device("d1", {**sas_body(KEY_B, KEY_A), "status": "disabled"}, "*")
    assert removed == [
        ("d1", None, RemovalReason.CREDENTIALS),
        ("d1", None, RemovalReason.DISABLED),
    ]


def test_list_devices_top(core: HubCore) -> None:
    for i in range(5):
        core.put_device(f"d{i}", sas_body(), None)
    assert [d["deviceId"] for d in core.list_devices()] == [f"d{i}" for i in range(5)]
    assert [d["deviceId"] for d in core.list_devices(2)] == ["d0", "d1"]
    # Out of 1..1000 means 1000, as IoT Hub documents it: here, all five.
    for outside in (0, -1, 1001):
        assert len(core.list_devices(outside)) == 5


def test_module_crud(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    module, created = core.put_module(
        "d1", "m1", {"moduleId": "m1", "deviceId": "d1", "managedBy": "IotEdge"}, None
    )
    assert created
    assert module["managedBy"] == "IotEdge"
    assert module["authentication"]["type"] == "sas"
    assert "status" not in module
    assert core.get_module("d1", "m1") == module
    with pytest.raises(HubError) as exc:
        core.put_module("d1", "m1", {}, None)
    assert _error(exc) == (409, "ModuleAlreadyExistsOnDevice", 409301)
    # update_module_with_certificate_authority also puts "etag" in the body (B.4)
    updated, created = core.put_module(
        "d1",
        "m1",
        {"etag": module["etag"], "authentication": {"type": "certificateAuthority"}},
        f'"{module["etag"]}"',
    )
    assert not created
    assert updated["authentication"]["type"] == "certificateAuthority"
    assert updated["managedBy"] is None
    with pytest.raises(HubError) as exc:
        core.put_module("d1", "m1", {}, f'"{module["etag"]}"')
    assert exc.value.status == 412
    with pytest.raises(HubError) as exc:
        core.delete_module("d1", "m1", f'"{module["etag"]}"')
    assert exc.value.status == 412
    assert [m["moduleId"] for m in core.list_modules("d1")] == ["m1"]
    core.delete_module("d1", "m1", '"*"')
    assert core.list_modules("d1") == []


def test_absent_module_is_404_module_not_found(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    for call in (
        lambda: core.get_module("d1", "m"),
        lambda: core.delete_module("d1", "m", None),
        lambda: core.put_module("d1", "m", {}, '"*"'),
        lambda: core.get_twin("d1", "m"),
        lambda: core.patch_twin("d1", "m", {}, None),
        lambda: core.device_twin("d1", "m"),
    ):
        with pytest.raises(HubError) as exc:
            call()
        assert _error(exc) == (404, "ModuleNotFound", 404010)


def test_fifty_modules_per_device(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    for i in range(50):
        core.put_module("d1", f"m{i}", {}, None)
    with pytest.raises(HubError) as exc:
        core.put_module("d1", "m50", {}, None)
    assert _error(exc) == (413, "TooManyModulesOnDevice", 413003)
    # Updating one of the fifty is still fine.
    assert core.put_module("d1", "m0", {}, "*")[1] is False


def test_module_key_change_notifies_that_module(core: HubCore) -> None:
    removed: list[tuple] = []
    core.on_identity_removed(lambda d, m, why: removed.append((d, m, why)))
    core.put_device("d1", sas_body(), None)
    core.put_module("d1", "m1", {}, None)
    core.put_module("d1", "m1", {"managedBy": "me"}, "*")
    assert removed == []
    core.put_module("d1", "m1", {"authentication": {"symmetricKey": {"primaryKey": KEY_A}}}, "*")
    core.delete_module("d1", "m1", None)
    assert removed == [
        ("d1", "m1", RemovalReason.CREDENTIALS),
        ("d1", "m1", RemovalReason.DELETED),
    ]


def test_module_twin_follows_device_status(core: HubCore) -> None:
    core.put_device("d1", sas_body(), None)
    module, _ = core.put_module("d1", "m1", {}, None)
    twin = core.get_twin("d1", "m1")
    assert twin["deviceEtag"] == module["etag"]
    assert twin["status"] == "enabled"
    core.put_device("d1", {**sas_body(), "status": "disabled"}, "*")
    assert core.get_twin("d1", "m1")["status"] == "disabled"
    assert core.get_twin("d1")["status"] == "disabled"


def test_statistics(core: HubCore) -> None:
    core.put_device("a", sas_body(), None)
    core.put_device("b", {**sas_body(), "status": "disabled"}, None)
    core.put_device("c", sas_body(), None)
    assert core.registry_statistics() == {
        "totalDeviceCount": 3,
        "enabledDeviceCount": 2,
        "disabledDeviceCount": 1,
    }
    assert core.service_statistics() == {"connectedDeviceCount": 0}
    core.set_connected("a", None, True)
    core.put_module("c", "m", {}, None)
    core.set_connected("c", "m", True)  # modules are not devices
    assert core.service_statistics() == {"connectedDeviceCount": 1}
