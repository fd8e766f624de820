"""Which hub the window is on: open it, watch it, close it.

The built-in "Local hub" connection starts ``twin-explorer hub`` as a child process with
demo data; saved connections come from the profile store (secrets in the keyring). Only
one hub is open at a time; switching closes the previous service (and stops the local
hub when leaving it).
"""

from __future__ import annotations

import contextlib
import logging

from PySide6.QtCore import QObject, Signal

from twin_explorer.connection.profiles import ProfileError, ProfileManager
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.service import errors
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import (
    LocalHubError,
    LocalHubInfo,
    LocalHubProcess,
    make_service,
)
from twin_explorer.ui.common.tasks import Tasks

log = logging.getLogger(__name__)

LOCAL_HUB = "Local hub"


class HubSession(QObject):
    serviceChanged = Signal(object)  # HubService | None
    statusChanged = Signal(str, bool)  # text for the status bar, reachable?
    errorOccurred = Signal(object)

    def __init__(self, profiles: ProfileManager | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.profiles = profiles or ProfileManager()
        self._tasks = Tasks(on_error=self.errorOccurred.emit)
        self.service: HubService | None = None
        self.name: str | None = None
        self.local: LocalHubProcess | None = None
        self.local_info: LocalHubInfo | None = None

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL_HUB

    def open(self, name: str) -> None:
        """Switch to the named connection (or the built-in local hub) in the background."""
        self._tasks.spawn(self.open_async(name), name=f"open {name}")

    async def open_async(self, name: str) -> HubService:
        await self._close_service()
        self.statusChanged.emit(f"Connecting to {name}…", True)
        try:
            if name == LOCAL_HUB:
                service = await self._open_local()
            else:
                await self._stop_local()
                service = self._open_profile(name)
        except LocalHubError as exc:
            self.statusChanged.emit(f"{LOCAL_HUB}: not running", False)
            raise errors.Unreachable(str(exc), hub=LOCAL_HUB) from None
        self.service = service
        self.name = name
        self.serviceChanged.emit(service)
        await self.check()
        return service

    async def use(self, name: str, service: HubService) -> None:
        """Switch to a service made elsewhere (a hub the caller started)."""
        await self._close_service()
        self.service = service
        self.name = name
        self.serviceChanged.emit(service)
        await self.check()

    async def check(self) -> bool:
        """One authenticated call; the status bar says whether the hub answers."""
        service = self.service
        if service is None:
            return False
        try:
            stats = await service.check()
        except errors.ServiceError as exc:
            self.statusChanged.emit(f"{self.name} ({service.host}): {exc.message}", False)
            raise
        devices = f"{stats.total_devices:,} device{'s' if stats.total_devices != 1 else ''}"
        self.statusChanged.emit(f"{self.name} ({service.host}) · {devices}", True)
        return True

    def recount(self) -> None:
        """Read the hub's device count again (after creates and deletes, on Refresh)."""
        if self.service is not None:
            self._tasks.spawn(self._recount(), name="recount")

    async def _recount(self) -> None:
        with contextlib.suppress(errors.ServiceError):  # check() put it in the status bar
            await self.check()

    async def _open_local(self) -> HubService:
        if self.local is None or not self.local.running:
            self.local = LocalHubProcess()
            self.local_info = await self.local.start()
        info = self.local_info
        assert info is not None
        # Loopback only: a corporate HTTPS_PROXY must not capture calls to our own hub.
        return HubService(
            info.service_connection_string, ca_cert=info.ca_cert, use_env_proxies=False
        )

    def profile_names(self) -> list[str]:
        try:
            return [profile.name for profile in self.profiles.list()]
        except ProfileError:
            return []

    def _open_profile(self, name: str) -> HubService:
        try:
            connection_string = self.profiles.get_connection_string(name)
            self.profiles.touch(name)
        except (ProfileError, SecretStoreError) as exc:
            self.statusChanged.emit(f"{name}: not connected", False)
            raise errors.ServiceError(f"Could not open the connection '{name}': {exc}.") from None
        return make_service(connection_string)

    async def _close_service(self) -> None:
        if self.service is not None:
            service, self.service = self.service, None
            self.serviceChanged.emit(None)
            await service.aclose()

    async def _stop_local(self) -> None:
        if self.local is not None:
            local, self.local = self.local, None
            self.local_info = None
            await local.stop()

    async def aclose(self) -> None:
        await self._tasks.cancel_all()
        await self._close_service()
        await self._stop_local()
