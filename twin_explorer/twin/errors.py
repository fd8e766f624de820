"""Validation problems found in a twin section, and the exception that carries them."""

from __future__ import annotations

from dataclasses import dataclass

# How many issues ``str(InvalidTwin)`` spells out before summarising the rest.
_SHOWN_IN_STR = 3


@dataclass(frozen=True)
class TwinIssue:
    """One problem in a twin document.

    ``path`` holds the keys from the section root, starting with the section name
    (``("desired", "a", "b")``); array elements appear as their decimal index.
    ``code`` is a short machine code (``forbidden-char``, ``too-deep``, ``too-large``,
    ``int-range``, ``string-too-long``, ``key-too-long``, ``empty-key``, ``not-object``,
    ``reserved-key``, ``invalid-json-type``); ``message`` says the same in plain words.
    """

    path: tuple[str, ...]
    message: str
    code: str


class InvalidTwin(ValueError):
    """A twin operation was refused; ``issues`` lists every problem found."""

    def __init__(self, issues: list[TwinIssue]) -> None:
        self.issues = list(issues)
        super().__init__(_describe(self.issues))

    def __str__(self) -> str:
        return _describe(self.issues)


def _describe(issues: list[TwinIssue]) -> str:
    if not issues:
        return "invalid twin"
    text = "; ".join(issue.message for issue in issues[:_SHOWN_IN_STR])
    rest = len(issues) - _SHOWN_IN_STR
    if rest > 0:
        text += f" (and {rest} more {'issue' if rest == 1 else 'issues'})"
    return text
