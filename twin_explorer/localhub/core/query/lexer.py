"""Tokenizer for the IoT Hub query language.

Strings use single or double quotes with IoT Hub's backslash escapes (``\\'``, ``\\"``,
``\\\\``, ``\\uXXXX``, plus JSON's ``\\/ \\b \\f \\n \\r \\t``); doubling the quote
(``'it''s'``) works too, as in SQL. ``[[any text]]`` is one path segment: IoT Hub's way to
name a key that is a keyword or holds characters an identifier cannot, e.g.
``tags.[[group]].name``. Numbers are decimal (``12``, ``1.5e3``) or hexadecimal (``0x1F``);
a leading minus sign is a separate token that the parser folds into the literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from twin_explorer.localhub.core.query.errors import QuerySyntaxError

MAX_QUERY_LENGTH = 8192  # reference C.6


class Kind(Enum):
    IDENT = "identifier"
    NUMBER = "number"
    STRING = "string"
    SEGMENT = "[[...]] segment"
    PUNCT = "symbol"
    EOF = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # exactly as written
    value: object  # decoded: str for IDENT/STRING/SEGMENT, int | float for NUMBER
    pos: int

    def is_word(self, *words: str) -> bool:
        """True for an identifier spelling one of ``words`` (upper case), in any case."""
        return self.kind is Kind.IDENT and self.text.upper() in words

    def describe(self) -> str:
        if self.kind is Kind.EOF:
            return "the end of the query"
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        if self.kind is Kind.STRING:
            return f"the string {text}"
        return f"'{text}'"


_PUNCT = ("!=", "<>", "<=", ">=", "*", ",", ".", "(", ")", "[", "]", "=", "<", ">")
_ARITHMETIC = "+-/%"
_DIGITS = "0123456789"
_HEX_DIGITS = _DIGITS + "abcdefABCDEF"
_SIMPLE_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "/": "/"}
_SIMPLE_ESCAPES |= {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"the query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}",
            MAX_QUERY_LENGTH,
            text,
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            tokens.append(Token(Kind.EOF, "", None, n))
            return tokens
        ch = text[i]
        after_dot = bool(tokens) and tokens[-1].text == "." and tokens[-1].kind is Kind.PUNCT
        if text.startswith("[[", i):
            token = _segment(text, i)
        elif ch in _DIGITS and not after_dot:
            token = _number(text, i)
        elif _is_word_char(ch):
            word = text[i : _skip(text, i, None)]
            token = Token(Kind.IDENT, word, word, i)
        elif ch in "'\"":
            token = _string(text, i)
        else:
            punct = next((p for p in _PUNCT if text.startswith(p, i)), None)
            if punct is None:
                punct = ch if ch in _ARITHMETIC else None
            if punct is None:
                raise QuerySyntaxError(f"unexpected character {ch!r}", i, text)
            token = Token(Kind.PUNCT, punct, punct, i)
        tokens.append(token)
        i = token.pos + len(token.text)


def _segment(text: str, start: int) -> Token:
    end = text.find("]]", start + 2)
    if end < 0:
        raise QuerySyntaxError("unterminated [[ segment: expected ]]", start, text)
    name = text[start + 2 : end]
    if not name:
        raise QuerySyntaxError("empty [[]] segment", start, text)
    return Token(Kind.SEGMENT, text[start : end + 2], name, start)


def _number(text: str, start: int) -> Token:
    hexadecimal = text.startswith(("0x", "0X"), start)
    i = _skip(text, start + 2, _HEX_DIGITS) if hexadecimal else _skip(text, start, _DIGITS)
    if not hexadecimal:
        if text.startswith(".", i) and text[i + 1 : i + 2] in tuple(_DIGITS):
            i = _skip(text, i + 1, _DIGITS)
        exponent = i + 1 + (text[i + 1 : i + 2] in ("+", "-"))
        if text[i : i + 1] in ("e", "E") and text[exponent : exponent + 1] in tuple(_DIGITS):
            i = _skip(text, exponent, _DIGITS)
    raw = text[start:i]
    if raw in ("0x", "0X") or (i < len(text) and _is_word_char(text[i])):
        raw = text[start : _skip(text, i, None)]
        raise QuerySyntaxError(f"invalid number {raw!r}", start, text)
    value: int | float = int(raw, 16) if hexadecimal else int(raw) if raw.isdigit() else float(raw)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        value = float(value)  # beyond SQLite's integers; JSON numbers are doubles anyway
    if value in (float("inf"), float("-inf")):
        raise QuerySyntaxError(f"number {raw!r} is out of range", start, text)
    return Token(Kind.NUMBER, raw, value, start)


def _skip(text: str, i: int, chars: str | None) -> int:
    """Index after the run of ``chars`` (word characters if None) starting at ``i``."""
    while i < len(text) and (text[i] in chars if chars else _is_word_char(text[i])):
        i += 1
    return i


def _string(text: str, start: int) -> Token:
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while True:
        if i >= n:
            raise QuerySyntaxError("unterminated string", start, text)
        ch = text[i]
        if ch == quote:
            if text.startswith(quote, i + 1):  # doubled quote, SQL style
                out.append(quote)
                i += 2
                continue
            return Token(Kind.STRING, text[start : i + 1], "".join(out), start)
        if ch == "\\":
            decoded, i = _escape(text, i)
            out.append(decoded)
            continue
        out.append(ch)
        i += 1


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape at ``text[i] == '\\'``; return it and the index after it."""
    code = text[i + 1 : i + 2]
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code], i + 2
    if code != "u":
        raise QuerySyntaxError(f"unknown escape '\\{code}' in string", i, text)
    unit = _hex4(text, i)
    if 0xD800 <= unit < 0xDC00 and text.startswith("\\u", i + 6):
        low = _hex4(text, i + 6)
        if 0xDC00 <= low < 0xE000:
            return chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), i + 12
    if 0xD800 <= unit < 0xE000:
        raise QuerySyntaxError("unpaired surrogate in \\u escape", i, text)
    return chr(unit), i + 6


def _hex4(text: str, i: int) -> int:
    digits = text[i + 2 : i + 6]
    if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise QuerySyntaxError("\\u must be followed by 4 hexadecimal digits", i, text)
    return int(digits, 16)
