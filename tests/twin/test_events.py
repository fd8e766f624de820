from __future__ import annotations

from twin_explorer.twin.events import Direction, PatchEvent, PatchStream, Section


def _event(**kw) -> PatchEvent:
    base = dict(
        device_id="d1",
        module_id="m1",
        direction=Direction.SENT,
        section=Section.DESIRED,
        body={"b": 1, "a": None},
        version=3,
    )
    return PatchEvent(**{**base, **kw})


def test_event_identity_and_compact_json():
    event = _event()
    assert event.identity == "d1/m1"
    assert _event(module_id=None).identity == "d1"
    assert event.compact() == '{"a":null,"b":1}'
    doc = event.to_json()
    assert doc["direction"] == "sent" and doc["section"] == "desired" and doc["version"] == 3
    assert doc["body"] == {"b": 1, "a": None}


def test_events_get_increasing_ids():
    first, second = _event(), _event()
    assert second.id > first.id


def test_stream_fans_out_and_survives_a_broken_listener():
    stream = PatchStream()
    seen: list[PatchEvent] = []

    def broken(_event: PatchEvent) -> None:
        raise RuntimeError("view gone")

    stream.subscribe(broken)
    unsubscribe = stream.subscribe(seen.append)
    event = _event()
    stream.publish(event)
    assert seen == [event]
    assert isinstance(stream.errors[0], RuntimeError)
    unsubscribe()
    stream.publish(_event())
    assert seen == [event]
