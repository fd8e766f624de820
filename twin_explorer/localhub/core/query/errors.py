"""Errors the query package raises; the hub answers all of them with 400 Bad Request."""

from __future__ import annotations


class QuerySyntaxError(ValueError):
    """The query text is not valid, or uses a feature the local hub does not support.

    ``position`` is the 0-based character offset of the offending token; ``line`` and
    ``column`` are the same place counted from 1, as the message shows them.
    """

    def __init__(self, message: str, position: int, text: str = "") -> None:
        self.position = position
        before = text[:position]
        self.line = before.count("\n") + 1
        self.column = position - (before.rfind("\n") + 1) + 1
        where = (
            f"at line {self.line}, column {self.column}"
            if "\n" in text
            else f"at column {self.column}"
        )
        self.message = message
        super().__init__(f"{message} {where}")


class BadContinuation(ValueError):
    """A continuation token that this hub did not issue, or that was damaged on the way."""


class BadPageSize(ValueError):
    """An ``x-ms-max-item-count`` header that is not a positive whole number."""
