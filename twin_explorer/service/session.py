"""Which hub the window is on: open it, check it, close it (no Qt).

The built-in "Local hub" connection starts ``twin-explorer hub`` as a child process with
demo data; saved connections come from the profile store (secrets in the keyring). Only
one hub is open at a time; switching closes the previous service (and stops the local
hub when leaving it). Views follow ``service_changed`` and ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib

from twin_explorer.connection.profiles import ProfileError, ProfileManager
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.service import entra, errors
from twin_explorer.service.hub import HubService
from twin_explorer.service.local_hub import (
    LocalHubError,
    LocalHubInfo,
    LocalHubProcess,
    make_service,
)
from twin_explorer.service.observable import Listeners

LOCAL_HUB = "Local hub"


class HubSessionState:
    def __init__(self, profiles: ProfileManager | None = None) -> None:
        self.profiles = profiles or ProfileManager()
        self.service: HubService | None = None
        self.name: str | None = None
        self.local: LocalHubProcess | None = None
        self.local_info: LocalHubInfo | None = None
        self.service_changed: Listeners[HubService | None] = Listeners()
        self.status: Listeners[tuple[str, bool]] = Listeners()  # status-bar text, reachable?
        self.account: entra.Account | None = None  # who is signed in (Entra ID connections)
        self.cache_note: str | None = None  # why that sign-in lasts this session only

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL_HUB

    def profile_names(self) -> list[str]:
        try:
            return [profile.name for profile in self.profiles.list()]
        except ProfileError:
            return []

    async def open(self, name: str) -> HubService:
        """Switch to the named connection (or the built-in local hub)."""
        await self._close_service()
        self.status.emit((f"Connecting to {name}…", True))
        try:
            if name == LOCAL_HUB:
                service = await self._open_local()
            else:
                await self._stop_local()
                service = await self._open_profile(name)
        except LocalHubError as exc:
            self.status.emit((f"{LOCAL_HUB}: not running", False))
            raise errors.Unreachable(str(exc), hub=LOCAL_HUB) from None
        await self._switched(name, service)
        return service

    async def use(self, name: str, service: HubService) -> None:
        """Switch to a service made elsewhere (a hub the caller started)."""
        await self._close_service()
        await self._switched(name, service)

    async def _switched(self, name: str, service: HubService) -> None:
        self.service = service
        self.name = name
        self.service_changed.emit(service)
        await self.check()

    async def check(self) -> bool:
        """One authenticated call; the status says whether the hub answers."""
        service = self.service
        if service is None:
            return False
        try:
            stats = await service.check()
        except errors.ServiceError as exc:
            self.status.emit((f"{self.name} ({service.host}): {exc.message}", False))
            raise
        devices = f"{stats.total_devices:,} device{'s' if stats.total_devices != 1 else ''}"
        who = ""
        if service.signed_in and self.account is not None:
            who = f" · {self.account.username} (tenant {self.account.tenant_id})"
        if service.signed_in and self.cache_note:
            who += f" · {self.cache_note}"
        self.status.emit((f"{self.name} ({service.host}) · {devices}{who}", True))
        return True

    async def recount(self) -> None:
        """Read the hub's device count again (after creates and deletes, on Refresh)."""
        with contextlib.suppress(errors.ServiceError):  # check() put it in the status
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

    async def _open_profile(self, name: str) -> HubService:
        try:
            profile = self.profiles.get(name)
            if profile.entra is not None:
                self.profiles.touch(name)
                return await self._open_entra(name, profile.host, profile.entra)
            connection_string = self.profiles.get_connection_string(name)
            self.profiles.touch(name)
        except (ProfileError, SecretStoreError) as exc:
            self.status.emit((f"{name}: not connected", False))
            raise errors.ServiceError(f"Could not open the connection '{name}': {exc}.") from None
        return make_service(connection_string)

    async def _open_entra(self, name: str, host: str, fields: dict[str, str]) -> HubService:
        """A Microsoft Entra ID connection: tokens from azure-identity's cache."""
        settings = entra.settings_of(host, fields)
        service, problem = await asyncio.to_thread(entra.open_service, settings)
        account = entra.account_of(settings.record)
        self.account = account
        self.cache_note = (
            f"signed in for this session only: {problem}" if problem is not None else None
        )
        return service

    async def _close_service(self) -> None:
        if self.service is not None:
            service, self.service = self.service, None
            self.service_changed.emit(None)
            await service.aclose()

    async def _stop_local(self) -> None:
        if self.local is not None:
            local, self.local = self.local, None
            self.local_info = None
            await local.stop()

    async def aclose(self) -> None:
        await self._close_service()
        await self._stop_local()
