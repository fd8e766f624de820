"""AMQP 1.0 primitive types (spec part 1): type-preserving encode and decode.

Decoding keeps the wire type: string is `str`, symbol is `Symbol`, binary is `bytes`, each
integer width has its own `int` subclass, so a value echoed back (a correlation-id, say)
goes out with the type it came in with. A plain `int` encodes as `long`, a plain `float`
as `double`. Unknown described values stay `Described`; types we never interpret
(decimals) stay opaque `Typed` and re-encode byte for byte.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .exceptions import AmqpDecodeError

# Nesting deeper than this is hostile (a stack of list8 headers costs 3 bytes a level).
MAX_DEPTH = 48


class Symbol(str):
    """AMQP symbol (ASCII name), distinct from string on the wire."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str.__repr__(self)})"


class Char(str):
    """A single UTF-32 character."""

    __slots__ = ()


class Timestamp(int):
    """Milliseconds since the Unix epoch."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Timestamp({int(self)})"


class Float(float):
    """IEEE 754 binary32."""

    __slots__ = ()


class _Int(int):
    __slots__ = ()
    LOW = 0
    HIGH = 0

    def __new__(cls, value: int = 0) -> _Int:
        if not cls.LOW <= value <= cls.HIGH:
            raise ValueError(f"{value} out of range for {cls.__name__}")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class UByte(_Int):
    __slots__ = ()
    HIGH = 0xFF


class UShort(_Int):
    __slots__ = ()
    HIGH = 0xFFFF


class UInt(_Int):
    __slots__ = ()
    HIGH = 0xFFFFFFFF


class ULong(_Int):
    __slots__ = ()
    HIGH = 0xFFFFFFFFFFFFFFFF


class Byte(_Int):
    __slots__ = ()
    LOW, HIGH = -0x80, 0x7F


class Short(_Int):
    __slots__ = ()
    LOW, HIGH = -0x8000, 0x7FFF


class Int(_Int):
    __slots__ = ()
    LOW, HIGH = -0x80000000, 0x7FFFFFFF


class Long(_Int):
    __slots__ = ()
    LOW, HIGH = -0x8000000000000000, 0x7FFFFFFFFFFFFFFF


@dataclass(frozen=True)
class Typed:
    """A value kept opaque: its constructor code and the raw bytes after it."""

    code: int
    raw: bytes


@dataclass(frozen=True)
class Described:
    """A described value we do not interpret (e.g. a source filter)."""

    descriptor: Any
    value: Any


@dataclass(frozen=True)
class Array:
    """AMQP array: one element constructor for all items (e.g. 0xa3 for symbols)."""

    element_code: int
    items: tuple[Any, ...] | list[Any]

    def __post_init__(self) -> None:
        # One canonical code per type (the form we write), so equality ignores width.
        code = _WIDE.get(self.element_code, _FIXED_ELEMENT.get(self.element_code))
        if code is not None:
            object.__setattr__(self, "element_code", code)


# ---------------------------------------------------------------- encoding

_pack_b = struct.Struct(">b").pack
_pack_B = struct.Struct(">B").pack
_pack_h = struct.Struct(">h").pack
_pack_H = struct.Struct(">H").pack
_pack_i = struct.Struct(">i").pack
_pack_I = struct.Struct(">I").pack
_pack_q = struct.Struct(">q").pack
_pack_Q = struct.Struct(">Q").pack
_pack_f = struct.Struct(">f").pack
_pack_d = struct.Struct(">d").pack

# Composites register here: class -> callable writing the whole described value.
_COMPOSITE_ENCODERS: dict[type, Callable[[Any, bytearray], None]] = {}


def encode(value: Any) -> bytes:
    out = bytearray()
    encode_into(value, out)
    return bytes(out)


def _variable(out: bytearray, small: int, large: int, data: bytes) -> None:
    if len(data) <= 0xFF:
        out += bytes((small, len(data)))
    else:
        out.append(large)
        out += _pack_I(len(data))
    out += data


def _compound(out: bytearray, small: int, large: int, count: int, body: bytes) -> None:
    if len(body) + 1 <= 0xFF and count <= 0xFF:
        out += bytes((small, len(body) + 1, count))
    else:
        out.append(large)
        out += _pack_I(len(body) + 4)
        out += _pack_I(count)
    out += body


def encode_list(items: Any, out: bytearray) -> None:
    if not items:
        out.append(0x45)
        return
    body = bytearray()
    for item in items:
        encode_into(item, body)
    _compound(out, 0xC0, 0xD0, len(items), bytes(body))


def encode_map(mapping: dict, out: bytearray) -> None:
    body = bytearray()
    for key, item in mapping.items():
        encode_into(key, body)
        encode_into(item, body)
    _compound(out, 0xC1, 0xD1, 2 * len(mapping), bytes(body))


def _encode_uint(v: int, out: bytearray) -> None:
    if v == 0:
        out.append(0x43)
    elif v <= 0xFF:
        out += bytes((0x52, v))
    else:
        out.append(0x70)
        out += _pack_I(v)


def _encode_ulong(v: int, out: bytearray) -> None:
    if v == 0:
        out.append(0x44)
    elif v <= 0xFF:
        out += bytes((0x53, v))
    else:
        out.append(0x80)
        out += _pack_Q(v)


def _encode_long(v: int, out: bytearray) -> None:
    if -128 <= v <= 127:
        out.append(0x55)
        out += _pack_b(v)
    else:
        out.append(0x81)
        out += _pack_q(v)


def _encode_int(v: int, out: bytearray) -> None:
    if -128 <= v <= 127:
        out.append(0x54)
        out += _pack_b(v)
    else:
        out.append(0x71)
        out += _pack_i(v)


_INT_ENCODERS: dict[type, Callable[[int, bytearray], None]] = {
    UByte: lambda v, out: out.extend(b"\x50" + _pack_B(v)),
    UShort: lambda v, out: out.extend(b"\x60" + _pack_H(v)),
    UInt: _encode_uint,
    ULong: _encode_ulong,
    Byte: lambda v, out: out.extend(b"\x51" + _pack_b(v)),
    Short: lambda v, out: out.extend(b"\x61" + _pack_h(v)),
    Int: _encode_int,
    Long: _encode_long,
    Timestamp: lambda v, out: out.extend(b"\x83" + _pack_q(v)),
}


def _raw_variable(item: Any) -> bytes:
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if isinstance(item, Symbol):
        return item.encode("ascii")
    return str(item).encode("utf-8")


# Element codes we write in their 32-bit form inside arrays (all items share one width).
_WIDE = {0xA0: 0xB0, 0xA1: 0xB1, 0xA3: 0xB3, 0xB0: 0xB0, 0xB1: 0xB1, 0xB3: 0xB3}
_FIXED_ELEMENT = {0x52: 0x70, 0x43: 0x70, 0x53: 0x80, 0x44: 0x80, 0x54: 0x71, 0x55: 0x81,
                  0x41: 0x56, 0x42: 0x56}


def encode_array(array: Array, out: bytearray) -> None:
    code = array.element_code
    if code in _WIDE:
        code = _WIDE[code]
        items = [_pack_I(len(d)) + d for d in (_raw_variable(i) for i in array.items)]
    else:
        code = _FIXED_ELEMENT.get(code, code)
        items = [_fixed_element(code, i) for i in array.items]
    _compound(out, 0xE0, 0xF0, len(items), bytes((code,)) + b"".join(items))


_FIXED_PACK: dict[int, Callable[[Any], bytes]] = {
    0x50: _pack_B, 0x60: _pack_H, 0x70: _pack_I, 0x80: _pack_Q, 0x51: _pack_b, 0x61: _pack_h,
    0x71: _pack_i, 0x81: _pack_q, 0x83: _pack_q, 0x72: _pack_f, 0x82: _pack_d,
    0x56: lambda v: b"\x01" if v else b"\x00", 0x40: lambda v: b"",
    0x98: lambda v: v.bytes, 0x73: lambda v: ord(v).to_bytes(4, "big"),
}


def _fixed_element(code: int, item: Any) -> bytes:
    pack = _FIXED_PACK.get(code)
    if pack is not None:
        return pack(item)
    if isinstance(item, Typed) and item.code == code:
        return item.raw
    raise TypeError(f"cannot write array element code 0x{code:02x}")


def encode_into(value: Any, out: bytearray) -> None:
    """Append the AMQP encoding of `value` to `out`."""
    if value is None:
        out.append(0x40)
    elif value is True:
        out.append(0x41)
    elif value is False:
        out.append(0x42)
    elif isinstance(value, int):
        writer = _INT_ENCODERS.get(type(value))
        if writer is None:
            for cls, fn in _INT_ENCODERS.items():
                if isinstance(value, cls):
                    writer = fn
                    break
            else:
                writer = _encode_long
        writer(int(value), out)
    elif isinstance(value, Symbol):
        _variable(out, 0xA3, 0xB3, value.encode("ascii"))
    elif isinstance(value, Char):
        out.append(0x73)
        out += ord(value).to_bytes(4, "big")
    elif isinstance(value, str):
        _variable(out, 0xA1, 0xB1, value.encode("utf-8"))
    elif isinstance(value, bytes | bytearray | memoryview):
        _variable(out, 0xA0, 0xB0, bytes(value))
    elif isinstance(value, Float):
        out.append(0x72)
        out += _pack_f(value)
    elif isinstance(value, float):
        out.append(0x82)
        out += _pack_d(value)
    elif isinstance(value, uuid.UUID):
        out.append(0x98)
        out += value.bytes
    elif isinstance(value, dict):
        encode_map(value, out)
    elif isinstance(value, list | tuple):
        encode_list(value, out)
    elif isinstance(value, Array):
        encode_array(value, out)
    elif isinstance(value, Described):
        out.append(0x00)
        encode_into(value.descriptor, out)
        encode_into(value.value, out)
    elif isinstance(value, Typed):
        out.append(value.code)
        out += value.raw
    else:
        writer = _COMPOSITE_ENCODERS.get(type(value))
        if writer is None:
            raise TypeError(f"no AMQP encoding for {type(value).__name__}")
        writer(value, out)


# ---------------------------------------------------------------- decoding

_unpack = struct.unpack_from
# Described composites register here: descriptor (ULong code or Symbol name) -> builder.
_COMPOSITE_DECODERS: dict[Any, Callable[[Any], Any]] = {}

def _wire_int(cls: type, fmt: str) -> Callable[[bytes, int], Any]:
    """Reader for an integer type: values off the wire are in range, skip the check."""
    unpack = struct.Struct(fmt).unpack_from
    make = int.__new__
    return lambda b, p: make(cls, unpack(b, p)[0])


_FIXED: dict[int, tuple[int, Callable[[bytes, int], Any]]] = {
    0x50: (1, _wire_int(UByte, ">B")),
    0x51: (1, _wire_int(Byte, ">b")),
    0x52: (1, _wire_int(UInt, ">B")),
    0x53: (1, _wire_int(ULong, ">B")),
    0x54: (1, _wire_int(Int, ">b")),
    0x55: (1, _wire_int(Long, ">b")),
    0x56: (1, lambda b, p: _bool_byte(b[p])),
    0x60: (2, _wire_int(UShort, ">H")),
    0x61: (2, _wire_int(Short, ">h")),
    0x70: (4, _wire_int(UInt, ">I")),
    0x71: (4, _wire_int(Int, ">i")),
    0x72: (4, lambda b, p: Float(_unpack(">f", b, p)[0])),
    0x73: (4, lambda b, p: _char(_unpack(">I", b, p)[0])),
    0x74: (4, lambda b, p: Typed(0x74, bytes(b[p:p + 4]))),
    0x80: (8, _wire_int(ULong, ">Q")),
    0x81: (8, _wire_int(Long, ">q")),
    0x82: (8, lambda b, p: _unpack(">d", b, p)[0]),
    0x83: (8, _wire_int(Timestamp, ">q")),
    0x84: (8, lambda b, p: Typed(0x84, bytes(b[p:p + 8]))),
    0x94: (16, lambda b, p: Typed(0x94, bytes(b[p:p + 16]))),
    0x98: (16, lambda b, p: uuid.UUID(bytes=bytes(b[p:p + 16]))),
}
_EMPTY: dict[int, Any] = {
    0x40: None, 0x41: True, 0x42: False, 0x43: UInt(0), 0x44: ULong(0), 0x45: None,
}


def _bool_byte(v: int) -> bool:
    if v > 1:
        raise AmqpDecodeError(f"bad boolean byte 0x{v:02x}")
    return v == 1


def _char(v: int) -> Char:
    try:
        return Char(chr(v))
    except (ValueError, OverflowError):
        raise AmqpDecodeError("bad char") from None


def _need(buf: bytes, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise AmqpDecodeError("value runs past the end of its frame")


def _text(code: int, data: bytes) -> Any:
    if code in (0xA0, 0xB0):
        return data
    try:
        if code in (0xA1, 0xB1):
            return data.decode("utf-8")
        return Symbol(data.decode("ascii"))
    except UnicodeDecodeError:
        raise AmqpDecodeError("string or symbol is not valid text") from None


def decode(data: bytes) -> Any:
    """Decode exactly one value filling `data`."""
    value, pos = decode_value(data, 0)
    if pos != len(data):
        raise AmqpDecodeError("trailing bytes after a value")
    return value


# One reader per constructor code: (buffer, position after the code, depth) -> (value, end).
_Reader = Callable[[bytes, int, int], tuple[Any, int]]


def _constant(value: Any) -> _Reader:
    return lambda buf, pos, depth: (value, pos)


def _fixed(width: int, read: Callable[[bytes, int], Any]) -> _Reader:
    def reader(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if pos + width > len(buf):
            raise AmqpDecodeError("value runs past the end of its frame")
        return read(buf, pos), pos + width
    return reader


def _sized(code: int, wide: bool) -> _Reader:
    def reader(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if wide:
            _need(buf, pos, 4)
            size = _unpack(">I", buf, pos)[0]
            pos += 4
        else:
            _need(buf, pos, 1)
            size = buf[pos]
            pos += 1
        end = pos + size
        if end > len(buf):
            raise AmqpDecodeError("value runs past the end of its frame")
        return _text(code, bytes(buf[pos:end])), end
    return reader


def _described(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise AmqpDecodeError("values nested too deeply")
    descriptor, pos = decode_value(buf, pos, depth + 1)
    if isinstance(descriptor, Described):
        raise AmqpDecodeError("a descriptor cannot itself be described")
    value, pos = decode_value(buf, pos, depth + 1)
    build = _COMPOSITE_DECODERS.get(descriptor)
    if build is not None:
        return build(value), pos
    return Described(descriptor, value), pos


def _compound_reader(code: int) -> _Reader:
    wide = code in (0xD0, 0xD1, 0xF0)
    is_map = code in (0xC1, 0xD1)
    is_array = code in (0xE0, 0xF0)

    def reader(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise AmqpDecodeError("values nested too deeply")
        if wide:
            _need(buf, pos, 8)
            size, count = _unpack(">II", buf, pos)
            body, end = pos + 8, pos + 4 + size
            if size < 4:
                raise AmqpDecodeError("compound size smaller than its count")
        else:
            _need(buf, pos, 2)
            size, count = buf[pos], buf[pos + 1]
            body, end = pos + 2, pos + 1 + size
            if size < 1:
                raise AmqpDecodeError("compound size smaller than its count")
        if end > len(buf):
            raise AmqpDecodeError("value runs past the end of its frame")
        if is_array:
            value, p = _decode_array(buf, body, end, count)
        else:
            # Each element takes at least one byte: a count larger than the body is a lie
            # that would otherwise cost work (or memory) before the truncation shows.
            if count > end - body:
                raise AmqpDecodeError("compound count larger than its size")
            items = []
            p = body
            for _ in range(count):
                item, p = decode_value(buf, p, depth + 1)
                if p > end:
                    raise AmqpDecodeError("compound element runs past its size")
                items.append(item)
            if is_map:
                if count % 2:
                    raise AmqpDecodeError("map with an odd number of elements")
                try:
                    value = dict(zip(items[::2], items[1::2], strict=True))
                except TypeError:
                    raise AmqpDecodeError("unhashable map key") from None
            else:
                value = items
        if p != end:
            raise AmqpDecodeError("compound size does not match its elements")
        return value, end
    return reader


def _list0(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    return [], pos


_READERS: dict[int, _Reader] = {
    0x00: _described,
    0x45: _list0,
    **{code: _constant(value) for code, value in _EMPTY.items() if code != 0x45},
    **{code: _fixed(width, read) for code, (width, read) in _FIXED.items()},
    **{code: _sized(code, code >= 0xB0) for code in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3)},
    **{code: _compound_reader(code) for code in (0xC0, 0xC1, 0xD0, 0xD1, 0xE0, 0xF0)},
}


def decode_value(buf: bytes, pos: int, depth: int = 0) -> tuple[Any, int]:
    """Decode one value at `pos`; return it and the position after it."""
    if pos >= len(buf):
        raise AmqpDecodeError("value runs past the end of its frame")
    reader = _READERS.get(buf[pos])
    if reader is None:
        raise AmqpDecodeError(f"unknown type code 0x{buf[pos]:02x}")
    return reader(buf, pos + 1, depth)


def _decode_array(buf: bytes, pos: int, end: int, count: int) -> tuple[Array, int]:
    _need(buf, pos, 1)
    code = buf[pos]
    pos += 1
    if code == 0x00:
        raise AmqpDecodeError("described arrays are not supported")
    items: list[Any] = []
    if code in _EMPTY:
        if count > 0x10000:
            raise AmqpDecodeError("array too long")
        items = [_EMPTY[code]] * count
        return Array(code, items), pos
    fixed = _FIXED.get(code)
    if fixed is not None:
        width, read = fixed
        _need(buf, pos, width * count)
        if pos + width * count > end:
            raise AmqpDecodeError("array runs past its size")
        items = [read(buf, pos + i * width) for i in range(count)]
        return Array(code, items), pos + width * count
    if count > end - pos:
        raise AmqpDecodeError("array count larger than its size")
    for _ in range(count):
        if code in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3):
            width = 1 if code < 0xB0 else 4
            _need(buf, pos, width)
            size = buf[pos] if width == 1 else _unpack(">I", buf, pos)[0]
            pos += width
            _need(buf, pos, size)
            items.append(_text(code, bytes(buf[pos:pos + size])))
            pos += size
        else:
            raise AmqpDecodeError(f"unknown array element code 0x{code:02x}")
        if pos > end:
            raise AmqpDecodeError("array runs past its size")
    return Array(code, items), pos
