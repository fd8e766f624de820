"""Qt-free state behind the device tree: pages of devices, modules loaded on demand.

A hub is never read whole. ``DeviceListing`` asks the hub for one page at a time
(``x-ms-max-item-count`` / ``x-ms-continuation``), so the first rows of a 100,000-device
hub appear after one round trip. The ID filter runs on the hub as
``CONTAINS(deviceId, …)``; IoT Hub in Azure only supports ``IS_DEFINED`` in twin
queries, so when the hub refuses that, the listing scans plain pages and filters them
here, still page by page, reporting how far it got.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twin_explorer.service import errors
from twin_explorer.service.hub import HubService
from twin_explorer.service.models import Identity
from twin_explorer.twin.identity import identity_path

log = logging.getLogger(__name__)

ALL_DEVICES = "SELECT * FROM devices"
SCAN_PAGE_SIZE = 1000
CONNECTION_QUERY_MAX_IDS = 200  # a screenful of rows, with room to spare


def quote_literal(text: str) -> str:
    """A string literal for the IoT Hub query language."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class ModuleRow:
    device_id: str
    module_id: str
    connection_state: str = "Disconnected"
    auth_type: str = "sas"
    identity: Identity | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return identity_path(self.device_id, self.module_id)


@dataclass
class DeviceRow:
    """One top-level row: a device twin (or a module twin, from a modules query)."""

    device_id: str
    module_id: str | None = None
    status: str = "enabled"
    connection_state: str = "Disconnected"
    auth_type: str = "sas"
    iot_edge: bool = False
    modules: list[ModuleRow] | None = None  # None until loaded
    twin: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_module(self) -> bool:
        return self.module_id is not None

    @property
    def label(self) -> str:
        return identity_path(self.device_id, self.module_id)

    @classmethod
    def from_twin(cls, twin: dict[str, Any]) -> DeviceRow:
        return cls(
            device_id=str(twin.get("deviceId", "")),
            module_id=twin.get("moduleId"),
            status=twin.get("status") or "enabled",
            connection_state=twin.get("connectionState") or "Disconnected",
            auth_type=twin.get("authenticationType") or "sas",
            iot_edge=bool((twin.get("capabilities") or {}).get("iotEdge")),
            twin=twin,
        )


class DeviceListing:
    """The rows for one view of a hub: everything, an ID filter, or a query."""

    def __init__(
        self,
        service: HubService,
        *,
        id_filter: str = "",
        query: str | None = None,
        page_size: int = 100,
    ) -> None:
        self._service = service
        self.id_filter = id_filter.strip()
        self.user_query = query.strip() if query else None
        self.page_size = page_size
        self.rows: list[DeviceRow] = []
        self._continuation: str | None = None
        self._exhausted = False
        self._scanning = False  # client-side ID filter over plain pages
        self.scanned = 0  # devices looked at while scanning

    @property
    def has_more(self) -> bool:
        return not self._exhausted

    @property
    def scanning(self) -> bool:
        return self._scanning

    def _query_text(self) -> str:
        if self.user_query:
            return self.user_query
        if self.id_filter and not self._scanning:
            return f"{ALL_DEVICES} WHERE CONTAINS(deviceId, {quote_literal(self.id_filter)})"
        return ALL_DEVICES

    def same_view(self, other: DeviceListing) -> bool:
        """Whether ``other`` shows the same rows: same hub, filter and query."""
        return (
            self._service is other._service
            and self.id_filter == other.id_filter
            and self.user_query == other.user_query
        )

    def again(self) -> DeviceListing:
        """A fresh listing of the same view, to read the hub's current state."""
        return DeviceListing(
            self._service, id_filter=self.id_filter, query=self.user_query, page_size=self.page_size
        )

    async def fetch_more(
        self, progress: Callable[[int], None] | None = None, *, at_least: int = 0
    ) -> list[DeviceRow]:
        """Fetch the next page (at least one row, unless the hub has no more), append it to
        ``rows`` and return it. ``at_least`` asks for bigger pages (up to the scan size)
        when catching up with rows already shown, so a refresh needs fewer round trips."""
        if self._exhausted:
            return []
        new: list[DeviceRow] = []
        while not new and not self._exhausted:
            try:
                page = await self._service.query(
                    self._query_text(),
                    page_size=SCAN_PAGE_SIZE
                    if self._scanning
                    else min(SCAN_PAGE_SIZE, max(self.page_size, at_least)),
                    continuation=self._continuation,
                )
            except errors.InvalidRequest:
                if self.id_filter and not self.user_query and not self._scanning:
                    log.info("hub refused CONTAINS(); filtering device IDs in the app")
                    self._scanning = True
                    self._continuation = None
                    continue
                raise
            self._continuation = page.continuation
            self._exhausted = page.continuation is None
            rows = [DeviceRow.from_twin(item) for item in page.items if "deviceId" in item]
            if self._scanning:
                self.scanned += len(rows)
                needle = self.id_filter.casefold()
                rows = [row for row in rows if needle in row.device_id.casefold()]
                if progress:
                    progress(self.scanned)
            new.extend(rows)
        self.rows.extend(new)
        return new

    async def fetch_modules(self, row: DeviceRow) -> list[ModuleRow]:
        """The modules of a device (at most 50, so one call). The caller stores them in
        ``row.modules`` once it shows them."""
        modules = await self._service.list_modules(row.device_id)
        return [
            ModuleRow(
                device_id=m.device_id,
                module_id=m.module_id or "",
                connection_state=m.connection_state,
                auth_type=m.auth_type,
                identity=m,
            )
            for m in modules
        ]


async def connection_states(
    service: HubService, device_ids: Iterable[str], module_device_ids: Iterable[str]
) -> dict[tuple[str, str | None], str]:
    """The connectionState of the given devices, and of every module of the given devices,
    as ``{(device_id, module_id or None): state}``: one small query each, naming the ids
    (the rows a person sees), never the whole hub."""
    states: dict[tuple[str, str | None], str] = {}
    for collection, ids in (("devices", device_ids), ("devices.modules", module_device_ids)):
        wanted = sorted(set(ids))[:CONNECTION_QUERY_MAX_IDS]
        if not wanted:
            continue
        listed = ", ".join(quote_literal(device_id) for device_id in wanted)
        module = ", moduleId" if collection == "devices.modules" else ""
        page = await service.query(
            f"SELECT deviceId{module}, connectionState FROM {collection} "
            f"WHERE deviceId IN [{listed}]",
            page_size=SCAN_PAGE_SIZE,
        )
        for item in page.items:
            state = item.get("connectionState")
            if isinstance(state, str) and "deviceId" in item:
                states[(str(item["deviceId"]), item.get("moduleId") or None)] = state
    return states
