"""The hub session as Qt signals: a thin adapter over the app model's ``HubSessionState``
(which opens, checks and closes hubs without Qt), owning the background tasks it starts."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from twin_explorer.connection.profiles import ProfileManager
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import LocalHubInfo, LocalHubProcess
from twin_explorer.service.session import LOCAL_HUB, HubSessionState
from twin_explorer.ui.common.tasks import Tasks

__all__ = ["LOCAL_HUB", "HubSession"]


class HubSession(QObject):
    serviceChanged = Signal(object)  # HubService | None
    statusChanged = Signal(str, bool)  # text for the status bar, reachable?
    errorOccurred = Signal(object)

    def __init__(
        self,
        profiles: ProfileManager | None = None,
        parent: QObject | None = None,
        *,
        state: HubSessionState | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state or HubSessionState(profiles)
        self._tasks = Tasks(on_error=self.errorOccurred.emit)
        self._unsubscribe = [
            self.state.service_changed.subscribe(self.serviceChanged.emit),
            self.state.status.subscribe(lambda status: self.statusChanged.emit(*status)),
        ]

    @property
    def profiles(self) -> ProfileManager:
        return self.state.profiles

    @property
    def service(self) -> HubService | None:
        return self.state.service

    @property
    def name(self) -> str | None:
        return self.state.name

    @property
    def local(self) -> LocalHubProcess | None:
        return self.state.local

    @property
    def local_info(self) -> LocalHubInfo | None:
        return self.state.local_info

    @local_info.setter
    def local_info(self, info: LocalHubInfo | None) -> None:
        self.state.local_info = info

    @property
    def is_local(self) -> bool:
        return self.state.is_local

    def profile_names(self) -> list[str]:
        return self.state.profile_names()

    def open(self, name: str) -> None:
        """Switch to the named connection (or the built-in local hub) in the background."""
        self._tasks.spawn(self.state.open(name), name=f"open {name}")

    async def open_async(self, name: str) -> HubService:
        return await self.state.open(name)

    async def use(self, name: str, service: HubService) -> None:
        await self.state.use(name, service)

    async def check(self) -> bool:
        return await self.state.check()

    def recount(self) -> None:
        """Read the hub's device count again (after creates and deletes, on Refresh)."""
        if self.state.service is not None:
            self._tasks.spawn(self.state.recount(), name="recount")

    async def aclose(self) -> None:
        await self._tasks.cancel_all()
        for unsubscribe in self._unsubscribe:  # this QObject may be gone by now
            unsubscribe()
        await self.state.aclose()
