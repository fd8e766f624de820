"""Method rules, transports, errors and events: the parts that need no hub."""

from __future__ import annotations

import asyncio

import pytest

from twin_explorer.simulator import (
    Behaviour,
    InvalidSettings,
    MethodRule,
    MethodTable,
    Mode,
    ModuleEvent,
    SimulatedModule,
    Status,
    TelemetryTemplate,
    Transport,
    parse_proxy,
    read_ca,
)
from twin_explorer.simulator.errors import (
    TimedOut,
    Unauthorized,
    Unreachable,
    Untrusted,
    sdk_retries,
    translate,
)
from twin_explorer.simulator.events import EventKind
from twin_explorer.simulator.methods import PendingMethod, parse_method_spec

KEY = "c2VjcmV0IGtleSBzZWNyZXQga2V5IQ=="
MODULE_CS = f"HostName=hub.example.net;DeviceId=d1;ModuleId=m1;SharedAccessKey={KEY}"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_method_specs():
    assert parse_method_spec('reboot=201:{"ok": true}') == (
        "reboot",
        MethodRule(Mode.FIXED, 201, {"ok": True}),
    )
    assert parse_method_spec("ping=200") == ("ping", MethodRule(Mode.FIXED, 200, None))
    assert parse_method_spec('say=200:"a:b"') == ("say", MethodRule(Mode.FIXED, 200, "a:b"))
    for bad in ("noequals", "=200", "x=abc", "x=200:{bad", "x=99999999999"):
        with pytest.raises(InvalidSettings):
            parse_method_spec(bad)


def test_method_table_falls_back_to_404():
    table = MethodTable(rules={"a": MethodRule(Mode.ASK)})
    assert table.rule_for("a").mode is Mode.ASK
    assert table.rule_for("b").status == 404
    table.fallback = MethodRule(Mode.FIXED, 200, "ok")
    assert table.rule_for("b") == MethodRule(Mode.FIXED, 200, "ok")
    table.remove("a")
    assert table.rule_for("a").payload == "ok"


async def test_a_pending_method_takes_one_answer():
    pending = PendingMethod("1", "m", None, 30.0, asyncio.get_running_loop().create_future())
    assert pending.open and 29 < pending.remaining() <= 30
    assert pending.answer(200, {"x": 1})
    assert not pending.answer(500) and not pending.open
    assert await pending.future == (200, {"x": 1})


def test_transport_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text(CA)
    direct = Transport.for_local_hub(ca, 8883, 9000)
    assert direct.proxy is None and direct.ca_pem == CA
    assert "directly on port 8883" in direct.route
    proxied = Transport.for_local_hub(ca, 40000, 9000, retry_interval=2)
    assert proxied.proxy == ("127.0.0.1", 9000)
    kwargs = proxied.client_kwargs()
    assert kwargs["server_verification_cert"] == CA
    assert kwargs["connection_retry_interval"] == 2
    assert kwargs["ensure_desired_properties"] is False
    assert (kwargs["proxy_options"].proxy_address, kwargs["proxy_options"].proxy_port) == (
        "127.0.0.1",
        9000,
    )
    assert "server_verification_cert" not in Transport().client_kwargs()
    with pytest.raises(InvalidSettings):
        Transport.for_local_hub(ca, 40000, None)
    (tmp_path / "not.pem").write_text("hello")
    with pytest.raises(InvalidSettings):
        read_ca(tmp_path / "not.pem")
    with pytest.raises(InvalidSettings):
        read_ca(tmp_path / "missing.pem")


def test_proxy_addresses():
    assert parse_proxy("127.0.0.1:8880") == ("127.0.0.1", 8880)
    assert parse_proxy("[::1]:3128") == ("::1", 3128)
    for bad in ("nohost", "host:", "host:99999", ":80", "bad host:80"):
        with pytest.raises(InvalidSettings):
            parse_proxy(bad)


def test_sdk_errors_in_plain_words():
    from azure.iot.device import exceptions as sdk
    from azure.iot.device.common import transport_exceptions as transport

    def chained(outer: Exception, inner: Exception) -> Exception:
        outer.__cause__ = inner
        return outer

    assert isinstance(translate(sdk.CredentialError("x")), Unauthorized)
    assert isinstance(translate(transport.UnauthorizedError()), Unauthorized)
    tls = chained(sdk.ClientError("TLS"), transport.TlsExchangeAuthError())
    assert isinstance(translate(tls), Untrusted)
    assert isinstance(translate(transport.ConnectionDroppedError("gone")), Unreachable)
    assert isinstance(translate(sdk.ConnectionFailedError("no")), Unreachable)
    assert isinstance(translate(sdk.OperationTimeout()), TimedOut)
    proxy = chained(transport.ProtocolProxyError(), ConnectionResetError("reset by peer"))
    assert "through the proxy (reset by peer)" in translate(proxy).text
    assert sdk_retries(transport.ConnectionFailedError())
    assert not sdk_retries(transport.ProtocolProxyError())
    assert not sdk_retries(transport.UnauthorizedError())
    odd = translate(sdk.ClientError(f"boom SharedAccessKey={KEY}"))
    assert KEY not in odd.text


def test_a_module_needs_a_module_or_device_string_and_never_shows_it():
    module = SimulatedModule(MODULE_CS)
    assert (module.device_id, module.module_id, module.identity) == ("d1", "m1", "d1/m1")
    assert module.is_module and module.status is Status.IDLE
    assert KEY not in repr(module) and KEY not in str(vars(module).get("reason"))
    device = SimulatedModule(f"HostName=h.example.net;DeviceId=d2;SharedAccessKey={KEY}")
    assert not device.is_module and device.identity == "d2"
    for bad in (
        f"HostName=h.example.net;SharedAccessKeyName=owner;SharedAccessKey={KEY}",
        "HostName=h.example.net;DeviceId=d;ModuleId=m;x509=true",
        "not a connection string",
    ):
        with pytest.raises(InvalidSettings) as caught:
            SimulatedModule(bad)
        assert KEY not in str(caught.value)


def test_events_as_json_lines():
    status = ModuleEvent(EventKind.STATUS, "d/m", {"status": "connected", "reason": "ok"}, "T")
    assert status.to_json() == {
        "time": "T",
        "event": "connected",
        "identity": "d/m",
        "status": "connected",
        "reason": "ok",
    }
    sent = ModuleEvent(EventKind.REPORTED_SENT, "d/m", {"patch": {}}, "T")
    assert sent.to_json()["event"] == "reported_sent"
    assert Status.SYNCING.online and not Status.RECONNECTING.online


def test_method_rules_take_a_modes_text_and_refuse_anything_else():
    # A QComboBox hands a StrEnum back as its text: the rule must still answer "fixed".
    assert MethodRule("fixed").mode is Mode.FIXED
    assert MethodRule("ask").mode is Mode.ASK
    for bad in (dict(mode="sometimes"), dict(status="200"), dict(status=True), dict(payload={1})):
        with pytest.raises(InvalidSettings):
            MethodRule(**bad)
    table = MethodTable()
    for name, rule in (("", MethodRule()), ("x", "fixed"), ("x", None)):
        with pytest.raises(InvalidSettings):
            table.set(name, rule)
    with pytest.raises(InvalidSettings):
        table.fallback = "ask"
    with pytest.raises(InvalidSettings):
        MethodTable(rules={"x": "fixed"})
    table.set(" reboot ", MethodRule("fixed", 200, {"ok": True}))
    assert table.rule_for("reboot").mode is Mode.FIXED


def test_a_module_takes_a_behaviours_text_and_refuses_anything_else():
    module = SimulatedModule(MODULE_CS)
    module.behaviour = "stamp"
    assert module.behaviour is Behaviour.STAMP
    with pytest.raises(InvalidSettings):
        module.behaviour = "shout"
    assert module.behaviour is Behaviour.STAMP
    with pytest.raises(InvalidSettings):
        module.methods = {"reboot": MethodRule()}


async def test_telemetry_inputs_are_checked_before_anything_is_sent():
    module = SimulatedModule(MODULE_CS)
    for body, properties in ((b"{}", None), ({"a": 1}, None), ("{}", {"n": 1}), ("{}", ["x"])):
        with pytest.raises(InvalidSettings):
            await module.send_telemetry(body, properties)
    assert module.counters.telemetry_failed == 0
    template = TelemetryTemplate.parse("{}")
    for bad in (("{}", 1.0), (template, "1"), (template, 0), (template, True)):
        with pytest.raises(InvalidSettings):
            module.start_telemetry(*bad)
    assert not module.telemetry_running
