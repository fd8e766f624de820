"""The window's state without Qt (like napari's ``ViewerModel``): what the panes are built
from and what the window wires together. Each pane gets only its part."""

from __future__ import annotations

from twin_explorer.connection.profiles import ProfileError, ProfileManager
from twin_explorer.connection.secrets import SecretStoreError
from twin_explorer.service.browse import DeviceRow, ModuleRow
from twin_explorer.service.c2d.endpoint import session_endpoint
from twin_explorer.service.c2d.outbox import Outbox
from twin_explorer.service.events.consumer import Endpoint
from twin_explorer.service.events.stream import EventStream, FollowHub, local_endpoint
from twin_explorer.service.history import TwinHistory
from twin_explorer.service.method_calls import MethodCalls
from twin_explorer.service.observable import Listeners, Value
from twin_explorer.service.session import HubSessionState
from twin_explorer.service.twin_notifications import TwinNotifications
from twin_explorer.service.watch import DEFAULT_INTERVAL, TwinWatcher
from twin_explorer.twin.events import PatchStream
from twin_explorer.twin.identity import identity_path

Row = DeviceRow | ModuleRow
Ids = tuple[str, str | None]  # (device_id, module_id or None)


class Selection(Value[Row | None]):
    """The twin people have chosen in the device tree (None: nothing chosen).

    Whoever shows the list sets it; anyone may ask to choose an identity (the editor puts
    the selection back while it asks about an unsaved edit), and the list answers
    through the handler it registered."""

    def __init__(self) -> None:
        super().__init__(None)
        self.requests: Listeners[Ids] = Listeners()
        self.deleted: Listeners[list[Ids]] = Listeners()  # identities the app deleted

    @property
    def identity(self) -> str | None:
        row = self.value
        return None if row is None else identity_path(row.device_id, row.module_id)

    def request(self, device_id: str, module_id: str | None = None) -> None:
        """Ask the list to choose this identity (it says so through ``set``)."""
        self.requests.emit((device_id, module_id))


class AppModel:
    """The patch stream, twin history, watcher, method calls, selection and hub session."""

    def __init__(
        self,
        profiles: ProfileManager | None = None,
        *,
        session: HubSessionState | None = None,
        watch_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.patches = PatchStream()  # every patch sent, received, reported or observed
        self.history = TwinHistory()  # versions of the twins watched
        self.watcher = TwinWatcher(self.patches, self.history, interval=watch_interval)
        self.method_calls = MethodCalls(self.patches)  # outlive their dialogs
        self.selection = Selection()
        self.session = session or HubSessionState(profiles)
        # The hub's event stream (telemetry, twin changes, connections, lifecycle).
        self.events = EventStream(self._event_endpoint, service_for=lambda: self.session.service)
        self._follow_events = FollowHub(self.events)
        self.twin_notifications = TwinNotifications(self.patches, self.events, self.watcher)
        self.c2d = Outbox(lambda: session_endpoint(self.session))  # cloud-to-device messages
        self._unsubscribe = [
            self.session.service_changed.subscribe(self.watcher.set_service),
            self.session.service_changed.subscribe(self._follow_events),
            self.session.service_changed.subscribe(self.c2d.hub_changed),
            self.selection.subscribe(self._select),
        ]

    def _event_endpoint(self) -> Endpoint | None:
        if self.session.is_local:
            return local_endpoint(self.session.local_info)
        name = self.session.name
        if name is None:
            return None
        try:  # an Azure hub: the Event Hub-compatible string kept with the profile
            text = self.session.profiles.get_events_connection_string(name)
        except (ProfileError, SecretStoreError):
            return None
        return Endpoint(text) if text else None

    def _select(self, row: Row | None) -> None:
        if row is None:
            self.watcher.select(None)
        else:
            self.watcher.select(row.device_id, row.module_id)

    async def aclose(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.twin_notifications.close()
        await self.watcher.aclose()
        await self._follow_events.aclose()
        await self.c2d.aclose()
        await self.session.aclose()
