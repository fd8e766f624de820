"""Recursive-descent parser for the IoT Hub query subset of reference C.8.

Grammar (keywords and function names in any case; precedence NOT > AND > OR)::

    query      := SELECT [TOP int] select FROM collection [WHERE or] <end>
    select     := '*' | COUNT '(' ')' [AS name] | item {',' item}
    item       := path [AS name]
    collection := devices | devices.modules
    or         := and {OR and}
    and        := unary {AND unary}
    unary      := NOT unary | '(' or ')' | function | comparison
    comparison := path op literal | literal op path
                | path IN list | path NIN list | path NOT IN list
    op         := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    function   := name '(' path [',' string] ')'
    list       := '[' literal {',' literal} ']'
    literal    := string | ['-'] number | true | false | null
    path       := segment {'.' segment}      segment := identifier | '[[' text ']]'

Segments after a dot may be keywords or start with a digit (``tags.group``,
``tags.2nd``). Anything else IoT Hub has (GROUP BY, ORDER BY, JOIN, aggregates other
than COUNT, arithmetic, comparing two properties) is rejected with a message saying
the local hub does not support it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, cast

from twin_explorer.localhub.core.query.ast import (
    STRING_FUNCTIONS,
    TYPE_FUNCTIONS,
    And,
    Collection,
    Compare,
    CompareOp,
    ComparePaths,
    Count,
    Expr,
    Function,
    In,
    Not,
    Or,
    Path,
    Projection,
    Query,
    Scalar,
    Select,
    SelectStar,
)
from twin_explorer.localhub.core.query.errors import QuerySyntaxError
from twin_explorer.localhub.core.query.lexer import Kind, Token, tokenize

MAX_NESTING = 64  # parentheses and NOTs; keeps recursion and the generated SQL shallow

KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "NIN", "AS", "COUNT", "TOP"}
    | {"TRUE", "FALSE", "NULL", "UNDEFINED", "GROUP", "ORDER", "BY", "JOIN"}
)
_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_AGGREGATES = frozenset({"AVG", "SUM", "MIN", "MAX"})
_CLAUSES = {"GROUP": "GROUP BY", "ORDER": "ORDER BY", "JOIN": "JOIN"}
_UNSUPPORTED = "is not supported by the local hub"


def parse(text: str) -> Query:
    """Parse query text into a ``Query``; raise ``QuerySyntaxError`` if it is not valid."""
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind is not Kind.EOF:
            self.i += 1
        return token

    def at_punct(self, *texts: str) -> bool:
        return self.tok.kind is Kind.PUNCT and self.tok.text in texts

    def fail(self, message: str, token: Token | None = None) -> NoReturn:
        token = token or self.tok
        raise QuerySyntaxError(message, token.pos, self.text)

    def expected(self, what: str) -> NoReturn:
        found = self.tok.describe()
        if self.is_keyword(self.tok) and ("path" in what or "condition" in what):
            found += f", a keyword (write [[{self.tok.text}]] for a property of that name)"
        self.fail(f"expected {what}, found {found}")

    def expect_punct(self, text: str, what: str) -> Token:
        if not self.at_punct(text):
            self.expected(what)
        return self.advance()

    def expect_word(self, word: str, what: str) -> Token:
        if not self.tok.is_word(word):
            self.expected(what)
        return self.advance()

    # -- clauses --------------------------------------------------------------------
    def query(self) -> Query:
        self.expect_word("SELECT", "SELECT at the start of the query")
        top = self.top()
        select = self.select_list()
        self.expect_word("FROM", "FROM after the select list")
        collection = self.collection()
        where = None
        if self.tok.is_word("WHERE"):
            self.advance()
            where = self.or_expr()
        if self.tok.kind is not Kind.EOF:
            for word, clause in _CLAUSES.items():
                if self.tok.is_word(word):
                    self.fail(f"{clause} {_UNSUPPORTED}")
            self.reject_arithmetic()
            self.expected(
                "AND, OR or the end of the query" if where else "WHERE or the end of the query"
            )
        return Query(select=select, collection=collection, where=where, top=top)

    def top(self) -> int | None:
        if not self.tok.is_word("TOP"):
            return None
        self.advance()
        token = self.tok
        if token.kind is not Kind.NUMBER or not isinstance(token.value, int):
            self.expected("a whole number after TOP")
        self.advance()
        return token.value

    def select_list(self) -> Select:
        if self.at_punct("*"):
            self.advance()
            if self.at_punct(","):
                self.fail("SELECT * cannot be combined with other select items")
            return SelectStar()
        items: list[Projection | Count] = [self.select_item()]
        while self.at_punct(","):
            self.advance()
            items.append(self.select_item())
        counts = [item for item in items if isinstance(item, Count)]
        if counts and len(items) > 1:
            self.fail(f"COUNT() with other select items needs GROUP BY, which {_UNSUPPORTED}")
        if counts:
            return counts[0]
        projections = cast(list[Projection], items)
        seen: set[str] = set()
        for item in projections:
            if item.key in seen:
                self.fail(f"two select items are named {item.key!r}; rename one with AS")
            seen.add(item.key)
        return tuple(projections)

    def select_item(self) -> Projection | Count:
        token = self.tok
        if token.kind is Kind.IDENT and self.tokens[self.i + 1].text == "(":
            name = token.text.upper()
            if name == "COUNT":
                self.advance()
                self.advance()
                if self.at_punct("*"):
                    self.fail("COUNT takes no argument: write COUNT()")
                self.expect_punct(")", "')' after COUNT(")
                return Count(self.alias() or "$1")
            if name in _AGGREGATES:
                self.fail(f"{name}() {_UNSUPPORTED}")
            self.fail(f"functions in the select list ({token.text}) are not supported")
        if token.kind not in (Kind.IDENT, Kind.SEGMENT) or self.is_keyword(token):
            self.expected("'*', COUNT() or a property path in the select list")
        return Projection(self.path(), self.alias())

    def alias(self) -> str | None:
        if not self.tok.is_word("AS"):
            return None
        self.advance()
        token = self.tok
        if token.kind is Kind.SEGMENT or (token.kind is Kind.IDENT and not self.is_keyword(token)):
            self.advance()
            return cast(str, token.value)
        self.expected("a name after AS")

    def collection(self) -> Collection:
        start = self.tok
        if not start.is_word("DEVICES"):
            self.expected("devices or devices.modules after FROM")
        self.advance()
        if not self.at_punct("."):
            return "devices"
        self.advance()
        child = self.tok
        if child.is_word("MODULES"):
            self.advance()
            return "devices.modules"
        if child.is_word("JOBS"):
            self.fail(f"devices.jobs {_UNSUPPORTED}", child)
        self.expected("modules after 'devices.'")

    # -- conditions -----------------------------------------------------------------
    def or_expr(self) -> Expr:
        return self.chain("OR", self.and_expr, Or)

    def and_expr(self) -> Expr:
        return self.chain("AND", self.unary, And)

    def chain(self, word: str, operand: Callable[[], Expr], node: type[And | Or]) -> Expr:
        """``operand {word operand}``, kept flat: n operands make one node, not n-1."""
        operands = [operand()]
        while self.tok.is_word(word):
            self.advance()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else node(tuple(operands))

    def unary(self) -> Expr:
        token = self.tok
        if token.is_word("NOT") or self.at_punct("("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                self.fail(f"conditions are nested more than {MAX_NESTING} levels deep")
            self.advance()
            if token.is_word("NOT"):
                result: Expr = Not(self.unary())
            else:
                result = self.or_expr()
                self.expect_punct(")", "')' to close the '('")
            self.depth -= 1
            return result
        if token.kind is Kind.IDENT and self.tokens[self.i + 1].text == "(":
            return self.function()
        if token.kind is Kind.IDENT and self.is_keyword(token) and not self.is_literal(token):
            self.expected("a condition")
        if token.kind in (Kind.IDENT, Kind.SEGMENT):
            return self.comparison_after_path(self.path())
        if self.is_literal(token):
            return self.comparison_after_literal()
        self.expected("a condition")

    def comparison_after_path(self, path: Path) -> Expr:
        token = self.tok
        if token.is_word("IN", "NIN"):
            self.advance()
            return In(path, self.literal_list(token.text.upper()), token.is_word("NIN"))
        if token.is_word("NOT") and self.tokens[self.i + 1].is_word("IN"):
            self.advance()
            self.advance()
            return In(path, self.literal_list("NOT IN"), True)
        op = self.operator(f"a comparison operator, IN or NIN after {_show(path)}")
        if self.tok.kind in (Kind.IDENT, Kind.SEGMENT) and not self.is_literal(self.tok):
            return ComparePaths(path, op, self.path())
        return Compare(path, op, self.literal())

    def comparison_after_literal(self) -> Expr:
        literal = self.literal()
        op = self.operator("a comparison operator after the value")
        if self.tok.kind not in (Kind.IDENT, Kind.SEGMENT) or self.is_literal(self.tok):
            self.expected("a property path: one side of a comparison must be a property")
        return Compare(self.path(), cast(CompareOp, _FLIPPED[op]), literal)

    def operator(self, what: str) -> CompareOp:
        if self.tok.kind is Kind.PUNCT and self.tok.text in _OPS:
            return cast(CompareOp, _OPS[self.advance().text])
        self.reject_arithmetic()
        self.expected(what)

    def reject_arithmetic(self) -> None:
        if self.at_punct("+", "-", "*", "/", "%"):
            self.fail(f"arithmetic ({self.tok.text}) {_UNSUPPORTED}")

    def function(self) -> Expr:
        name_token = self.advance()
        name = name_token.text.upper()
        self.advance()  # '('
        if name not in TYPE_FUNCTIONS | STRING_FUNCTIONS:
            self.fail(f"unknown function {name_token.text}()", name_token)
        if self.tok.kind not in (Kind.IDENT, Kind.SEGMENT) or self.is_keyword(self.tok):
            self.expected(f"a property path as the first argument of {name}()")
        args: tuple[Path | Scalar, ...] = (self.path(),)
        if name in STRING_FUNCTIONS:
            self.expect_punct(",", f"',' and a string after the path in {name}()")
            if self.tok.kind is not Kind.STRING:
                self.expected(f"a string as the second argument of {name}()")
            args += (self.advance().value,)  # type: ignore[assignment]
        self.expect_punct(")", f"')' to close {name}(")
        return Function(name, args)

    # -- paths and literals ---------------------------------------------------------
    def path(self) -> Path:
        segments = [self.segment(first=True)]
        while self.at_punct("."):
            self.advance()
            segments.append(self.segment(first=False))
        return tuple(segments)

    def segment(self, *, first: bool) -> str:
        token = self.tok
        if token.kind is Kind.SEGMENT or (
            token.kind is Kind.IDENT and not (first and self.is_keyword(token))
        ):
            self.advance()
            return cast(str, token.value)
        if first:
            self.expected("a property path")
        self.expected("a property name after '.'")

    def literal_list(self, keyword: str) -> tuple[Scalar, ...]:
        if self.at_punct("("):
            self.fail(f"expected '[' after {keyword} (IoT Hub lists use [..]), found '('")
        self.expect_punct("[", f"'[' after {keyword}")
        if self.at_punct("]"):
            self.fail(f"the list after {keyword} is empty")
        values = [self.literal()]
        while self.at_punct(","):
            self.advance()
            values.append(self.literal())
        self.expect_punct("]", "',' or ']' in the list")
        return tuple(values)

    def literal(self) -> Scalar:
        token = self.tok
        if token.kind is Kind.STRING:
            self.advance()
            return cast(str, token.value)
        if token.kind is Kind.NUMBER:
            self.advance()
            return cast(int | float, token.value)
        if self.at_punct("-") and self.tokens[self.i + 1].kind is Kind.NUMBER:
            self.advance()
            return -cast(int | float, self.advance().value)
        if token.is_word("TRUE", "FALSE", "NULL"):
            self.advance()
            return {"TRUE": True, "FALSE": False, "NULL": None}[token.text.upper()]
        if token.is_word("UNDEFINED"):
            self.fail("comparing with undefined is not supported; use IS_DEFINED(path)")
        self.expected("a value (a string, number, true, false or null)")

    def is_literal(self, token: Token) -> bool:
        if token.kind in (Kind.STRING, Kind.NUMBER):
            return True
        if token.kind is Kind.PUNCT and token.text == "-":
            return self.tokens[self.i + 1].kind is Kind.NUMBER
        return token.is_word("TRUE", "FALSE", "NULL", "UNDEFINED")

    @staticmethod
    def is_keyword(token: Token) -> bool:
        return token.kind is Kind.IDENT and token.text.upper() in KEYWORDS


def _show(path: Path) -> str:
    plain = (s if all(c.isalnum() or c in "_$" for c in s) else f"[[{s}]]" for s in path)
    return "'" + ".".join(plain) + "'"
