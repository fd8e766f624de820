from __future__ import annotations

import argparse
import base64
import io
import json

import pytest

from tests.connection.keyrings import RefusingKeyring
from twin_explorer.connection import cli
from twin_explorer.connection.profiles import ProfileManager

KEY = base64.b64encode(bytes(range(250, 256)) + bytes(range(100, 126))).decode()
CS = f"HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin-explorer")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _run(argv: list[str], monkeypatch, stdin: io.StringIO | None = None) -> int:
    monkeypatch.setattr("sys.stdin", stdin if stdin is not None else io.StringIO(""))
    args = _parser().parse_args(["connections", *argv])
    assert args.func is cli.run
    return args.func(args)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True

    def read(self, *_args) -> str:
        raise AssertionError("a terminal must be read with getpass, not stdin.read")


def test_add_from_a_pipe(memory_keyring, monkeypatch, capsys):
    assert _run(["add", "prod"], monkeypatch, io.StringIO(CS + "\n")) == 0
    out, err = capsys.readouterr()
    assert out == "Saved connection 'prod' (hub.example, policy iothubowner).\n"
    assert err == ""
    assert ProfileManager().get_connection_string("prod") == CS


def test_add_from_a_terminal_uses_getpass(memory_keyring, monkeypatch, capsys):
    prompts = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return CS

    monkeypatch.setattr(cli.getpass, "getpass", fake_getpass)
    assert _run(["add", "prod", "--local"], monkeypatch, _Tty()) == 0
    assert prompts == ["Connection string (input hidden): "]
    assert ProfileManager().get("prod").local is True
    assert KEY not in capsys.readouterr().out


def test_add_cancelled_at_the_prompt(memory_keyring, monkeypatch, capsys):
    def cancelled(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.getpass, "getpass", cancelled)
    assert _run(["add", "prod"], monkeypatch, _Tty()) == 1
    assert "cancelled; nothing was saved" in capsys.readouterr().err
    assert ProfileManager().list() == []


def test_add_with_empty_stdin(memory_keyring, monkeypatch, capsys):
    assert _run(["add", "prod"], monkeypatch, io.StringIO("  \n")) == 2
    assert "no connection string on stdin" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"HostName=h;DeviceId=d1;SharedAccessKey={KEY}", "this is a device connection string"),
        (f"HostName=h;SharedAccessKey={KEY}", "needs SharedAccessKeyName"),
        (f"HostName=h;SharedAccessKeyName=p;SharedAccessKey={KEY[:-3]}", "not valid base64"),
        (f"HostName=h;SharedAccessKeyName=p;SharedAccessKey={KEY};Extra={KEY}", "unknown part"),
    ],
)
def test_add_invalid_input_exits_2_without_echoing_the_secret(
    memory_keyring, monkeypatch, capsys, text, message
):
    assert _run(["add", "prod"], monkeypatch, io.StringIO(text)) == 2
    out, err = capsys.readouterr()
    assert err.startswith("twin-explorer connections add: error: ")
    assert message in err
    assert KEY[:20] not in out + err
    assert memory_keyring.passwords == {}


def test_add_duplicate_exits_2(memory_keyring, monkeypatch, capsys):
    assert _run(["add", "prod"], monkeypatch, io.StringIO(CS)) == 0
    assert _run(["add", "PROD"], monkeypatch, io.StringIO(CS)) == 2
    assert "already exists" in capsys.readouterr().err


def test_add_with_a_refusing_keyring_exits_1(use_keyring, monkeypatch, capsys):
    backend = use_keyring(RefusingKeyring())
    assert _run(["add", "prod"], monkeypatch, io.StringIO(CS)) == 1
    out, err = capsys.readouterr()
    assert "the system keyring refused to save the connection string" in err
    assert KEY[:20] not in out + err
    assert backend.passwords == {}


def test_list_table_and_json_never_show_keys(memory_keyring, monkeypatch, capsys):
    assert _run(["list"], monkeypatch) == 0
    assert "No saved connections" in capsys.readouterr().out

    manager = ProfileManager()
    manager.add("prod", CS)
    manager.add("local", CS.replace("hub.example", "localhost:8443"), local=True)
    manager.touch("prod")

    assert _run(["list"], monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "HOST", "POLICY", "LAST", "USED"]
    assert lines[1].split()[:3] == ["prod", "hub.example", "iothubowner"]
    assert lines[2].split() == ["local", "(local)", "localhost:8443", "iothubowner", "never"]

    assert _run(["list", "--json"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert KEY[:20] not in out
    data = json.loads(out)
    assert [(d["name"], d["host"], d["policy"], d["local"]) for d in data] == [
        ("prod", "hub.example", "iothubowner", False),
        ("local", "localhost:8443", "iothubowner", True),
    ]
    assert data[0]["last_used"] is not None


def test_remove(memory_keyring, monkeypatch, capsys):
    ProfileManager().add("prod", CS)
    assert _run(["remove", "prod"], monkeypatch) == 0
    assert capsys.readouterr().out == "Removed connection 'prod'.\n"
    assert ProfileManager().list() == []
    assert memory_keyring.passwords == {}
    assert _run(["remove", "prod"], monkeypatch) == 2
    assert "there is no saved connection named 'prod'" in capsys.readouterr().err


def test_damaged_connections_file_exits_1(memory_keyring, monkeypatch, capsys):
    ProfileManager().path.write_text("[{")
    assert _run(["list"], monkeypatch) == 1
    assert "is damaged" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["connections"], ["connections", "add"], ["connections", "list", "--keys"]],
)
def test_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_a_connection_string_in_argv_is_refused_without_echo(memory_keyring, monkeypatch, capsys):
    assert _run(["add", "prod", CS], monkeypatch, io.StringIO(CS)) == 2
    out, err = capsys.readouterr()
    assert "give the connection string on stdin, not as an argument" in err
    assert KEY[:20] not in out + err
    assert memory_keyring.passwords == {}


def test_run_with_an_injected_manager(memory_keyring, tmp_path, monkeypatch, capsys):
    manager = ProfileManager(config_dir=tmp_path / "elsewhere")
    monkeypatch.setattr("sys.stdin", io.StringIO(CS))
    args = _parser().parse_args(["connections", "add", "x"])
    assert cli.run(args, manager=manager) == 0
    assert (tmp_path / "elsewhere" / "connections.json").exists()
    assert not ProfileManager().path.exists()
