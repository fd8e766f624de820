"""AMQP primitive codec: every type round-trips with its exact wire type; garbage fails cleanly."""

from __future__ import annotations

import uuid

import pytest

from twin_explorer.localhub.protocols.amqp import (
    AmqpDecodeError,
    Array,
    Byte,
    Char,
    Described,
    Float,
    Int,
    Long,
    Short,
    Symbol,
    Timestamp,
    Typed,
    UByte,
    UInt,
    ULong,
    UShort,
    decode,
    encode,
)

U = uuid.UUID("8b8c704c-887b-4fa8-aebd-46f6d51a3138")

# (value, exact encoding) pairs: the smallest form the spec allows for each type.
GOLDEN = [
    (None, b"\x40"),
    (True, b"\x41"),
    (False, b"\x42"),
    (UByte(7), b"\x50\x07"),
    (UShort(8191), b"\x60\x1f\xff"),
    (UInt(0), b"\x43"),
    (UInt(200), b"\x52\xc8"),
    (UInt(65536), b"\x70\x00\x01\x00\x00"),
    (ULong(0), b"\x44"),
    (ULong(0x14), b"\x53\x14"),
    (ULong(262144), b"\x80\x00\x00\x00\x00\x00\x04\x00\x00"),
    (Byte(-1), b"\x51\xff"),
    (Short(-2), b"\x61\xff\xfe"),
    (Int(200), b"\x71\x00\x00\x00\xc8"),
    (Int(-5), b"\x54\xfb"),
    (Long(2), b"\x55\x02"),
    (Long(200), b"\x81\x00\x00\x00\x00\x00\x00\x00\xc8"),
    (Float(1.5), b"\x72\x3f\xc0\x00\x00"),
    (1.5, b"\x82\x3f\xf8\x00\x00\x00\x00\x00\x00"),
    (Char("é"), b"\x73\x00\x00\x00\xe9"),
    (Timestamp(1796538111000), b"\x83\x00\x00\x01\xa2\x4a\x04\x14\x18"),
    (U, b"\x98" + U.bytes),
    (b"0", b"\xa0\x010"),
    ("cbs", b"\xa1\x03cbs"),
    (Symbol("GET"), b"\xa3\x03GET"),
    ([], b"\x45"),
    ([UInt(1), "a"], b"\xc0\x06\x02\x52\x01\xa1\x01a"),
    ({Symbol("status"): Int(200)}, b"\xc1\x0e\x02\xa3\x06status\x71\x00\x00\x00\xc8"),
    (Array(0xA3, [Symbol("MSSBCBS"), Symbol("PLAIN")]),
     b"\xe0\x16\x02\xb3\x00\x00\x00\x07MSSBCBS\x00\x00\x00\x05PLAIN"),
    (Array(0xA3, []), b"\xe0\x02\x00\xb3"),  # an empty array8: size 2 is valid
    (Described(Symbol("apache.org:selector-filter:string"), "x > 1"),
     b"\x00\xa3\x21apache.org:selector-filter:string\xa1\x05x > 1"),
    (Typed(0x94, bytes(16)), b"\x94" + bytes(16)),
]


@pytest.mark.parametrize(("value", "wire"), GOLDEN, ids=lambda v: repr(v)[:30])
def test_golden_encoding_and_type_preserving_decode(value, wire):
    assert encode(value) == wire
    decoded = decode(wire)
    assert decoded == value
    assert type(decoded) is type(value)  # str stays str, Symbol stays Symbol, ...
    assert encode(decoded) == wire


def test_plain_python_ints_encode_as_long():
    assert encode(5) == b"\x55\x05"
    assert type(decode(encode(5))) is Long


@pytest.mark.parametrize(("wire", "value"), [
    (b"\xb1\x00\x00\x00\x03abc", "abc"),            # str32
    (b"\xb3\x00\x00\x00\x03abc", Symbol("abc")),    # sym32
    (b"\xb0\x00\x00\x00\x01\x00", b"\x00"),         # vbin32
    (b"\xd0\x00\x00\x00\x06\x00\x00\x00\x02\x40\x41", [None, True]),  # list32
    (b"\xd1\x00\x00\x00\x08\x00\x00\x00\x02\xa1\x01k\x41", {"k": True}),  # map32
    (b"\x56\x01", True),                            # boolean with a byte
    (b"\xe0\x02\x03\x40", Array(0x40, [None] * 3)),   # array of nulls
    (b"\x70\x00\x00\x00\x05", UInt(5)),             # uint in its wide form
    (b"\xf0\x00\x00\x00\x0d\x00\x00\x00\x02\x70\x00\x00\x00\x01\x00\x00\x00\x02",
     Array(0x70, [UInt(1), UInt(2)])),             # array32 of uint
])
def test_wide_and_alternative_forms_decode(wire, value):
    decoded = decode(wire)
    assert decoded == value and type(decoded) is type(value)
    assert decode(encode(decoded)) == decoded


def test_strings_beyond_255_bytes_use_32_bit_forms():
    text = "x" * 300
    assert encode(text)[:5] == b"\xb1\x00\x00\x01\x2c"
    assert decode(encode(Symbol(text))) == Symbol(text)
    assert decode(encode([text])) == [text]
    assert encode([text])[0] == 0xD0


def test_map_keys_keep_their_types():
    value = {Symbol("a"): 1, "b": 2, UInt(1): 3, b"a": 4, U: 5}
    decoded = decode(encode(value))
    assert decoded == value
    assert [type(k) for k in decoded] == [Symbol, str, UInt, bytes, uuid.UUID]


def test_uuid_and_ulong_ids_round_trip_exactly():
    for ident in (U, ULong(0), "ca9dcd72-ec3e-4ca3-966c-dbd7287352fb", b"\x01\x02"):
        back = decode(encode(ident))
        assert back == ident and type(back) is type(ident)


@pytest.mark.parametrize("wire", [
    b"",                            # nothing
    b"\xa1\x05abc",                 # string shorter than its size
    b"\x70\x00\x00",                # truncated uint
    b"\x99",                        # unknown code
    b"\xc0\x02\x03\x40",            # count larger than the body
    b"\xc1\x03\x01\x40\x40",        # size says one element, two present (trailing)
    b"\xc1\x02\x01\x40",            # map with an odd count
    b"\xa1\x02\xff\xfe",            # invalid UTF-8
    b"\xa3\x01\xe9",                # non-ASCII symbol
    b"\x56\x02",                    # boolean byte other than 0/1
    b"\x00\x00\x53\x01\x40\x40",    # described descriptor
    b"\xc0\x00\x00",                # size smaller than its count field
    b"\xc1\x05\x02\xc0\x01\x00\x40",  # unhashable (list) map key
    b"\x40\x40",                    # trailing bytes after a value
])
def test_garbage_raises_decode_error(wire):
    with pytest.raises(AmqpDecodeError):
        decode(wire)


def test_deep_nesting_is_refused_not_a_recursion_error():
    wire = b"\xd0\x00\x00\x00\x09\x00\x00\x00\x01" * 200 + b"\x40"
    with pytest.raises(AmqpDecodeError):
        decode(wire)


def test_integer_wrappers_check_their_range():
    with pytest.raises(ValueError):
        UByte(256)
    with pytest.raises(ValueError):
        UInt(-1)
