"""Plain-Python observables for the app model: no Qt, so the window's state is testable
on its own. Listeners are told in the order they subscribed; a failing listener never
stops the others: its error goes to ``sys.excepthook``, as Qt does with a failing slot."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Listeners(Generic[T]):
    """Fan-out of one kind of news to whoever subscribed."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[T], None]] = []

    def subscribe(self, listener: Callable[[T], None]) -> Callable[[], None]:
        """Listen; the returned function stops listening."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, value: T) -> None:
        for listener in list(self._listeners):
            try:
                listener(value)
            except Exception:  # one broken view must not silence the others
                sys.excepthook(*sys.exc_info())


class Value(Listeners[T]):
    """A value and the news of each time it is set (also to an equal value: a person
    choosing the same row again is news to the panes that follow the selection)."""

    def __init__(self, value: T) -> None:
        super().__init__()
        self._value = value

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        self._value = value
        self.emit(value)
