"""Which twins a bulk run changes: a list of identities, or a query on ``devices`` or
``devices.modules``, counted before anything runs and read page by page at any size."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twin_explorer.service import errors
from twin_explorer.service.models import QueryPage, Twin

PAGE_SIZE = 1000  # IoT Hub's largest query page
READ_CONCURRENCY = 8  # twin GETs in flight when the twins are named one by one

_QUERY_RE = re.compile(
    r"^\s*SELECT\s+\*\s+FROM\s+(devices(?:\.modules)?)\b(?P<rest>.*)$", re.I | re.S
)

Ids = tuple[str, str | None]


class SelectionError(ValueError):
    """The query cannot choose twins for a bulk change (said in plain words)."""


class ReadService(Protocol):
    async def get_twin(self, device_id: str, module_id: str | None = None) -> Twin: ...

    async def query(
        self, text: str, *, page_size: int = 100, continuation: str | None = None
    ) -> QueryPage: ...


@dataclass(frozen=True)
class TwinSelection:
    """Either ``query`` (``SELECT * FROM devices[.modules] [WHERE …]``) or ``ids``."""

    query: str = ""
    ids: tuple[Ids, ...] = ()

    def __post_init__(self) -> None:
        if self.query and self.ids:
            raise SelectionError("Choose twins by a query or by a list, not both.")
        if self.query and not _QUERY_RE.match(self.query):
            raise SelectionError(
                "A bulk change selects whole twins: write SELECT * FROM devices [WHERE …] "
                "or SELECT * FROM devices.modules [WHERE …]."
            )
        if not self.query and not self.ids:
            raise SelectionError("No twins chosen: give a query or pick twins in the tree.")

    @classmethod
    def of(cls, ids: Sequence[Ids]) -> TwinSelection:
        return cls(ids=tuple(dict.fromkeys((d, m or None) for d, m in ids)))

    @property
    def description(self) -> str:
        if self.query:
            return " ".join(self.query.split())
        return f"{len(self.ids)} twin{'s' if len(self.ids) != 1 else ''} chosen in the tree"

    def count_query(self) -> str:
        match = _QUERY_RE.match(self.query)
        assert match is not None
        return f"SELECT COUNT() AS total FROM {match.group(1)}{match.group('rest')}"

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "ids": [list(i) for i in self.ids]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TwinSelection:
        return cls(doc.get("query") or "", tuple((d, m) for d, m in doc.get("ids") or ()))


async def count(service: ReadService, selection: TwinSelection) -> int:
    """How many twins the selection holds now, before anything is read in full."""
    if not selection.query:
        return len(selection.ids)
    page = await service.query(selection.count_query(), page_size=1)
    row = page.items[0] if page.items else {}
    total = row.get("total") if isinstance(row, dict) else None
    if not isinstance(total, int):
        raise SelectionError("The hub did not answer the count of this query.")
    return total


async def pages(service: ReadService, selection: TwinSelection) -> AsyncIterator[list[dict]]:
    """The selected twins, a page at a time (whole twins as the hub sent them). A named
    twin that is gone comes as ``{"deviceId", "moduleId", "missing": True}``."""
    if selection.query:
        continuation: str | None = None
        while True:
            page = await service.query(
                selection.query, page_size=PAGE_SIZE, continuation=continuation
            )
            if page.items:
                yield [item for item in page.items if isinstance(item, dict)]
            continuation = page.continuation
            if not continuation:
                return
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(device_id: str, module_id: str | None) -> dict:
        async with limit:
            try:
                return (await service.get_twin(device_id, module_id)).doc
            except errors.NotFound:
                return {"deviceId": device_id, "moduleId": module_id, "missing": True}

    ids = selection.ids
    for start in range(0, len(ids), PAGE_SIZE // 10):
        chunk = ids[start : start + PAGE_SIZE // 10]
        yield list(await asyncio.gather(*(read(d, m) for d, m in chunk)))
