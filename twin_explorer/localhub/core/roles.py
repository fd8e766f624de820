"""IoT Hub's data-plane roles and the permission each service operation needs.

The built-in roles (Azure "Internet of Things" built-in roles) grant data actions by
pattern; an operation needs one data action ("Control access to IoT Hub by using
Microsoft Entra ID", permissions table):

- IoT Hub Data Contributor: ``Microsoft.Devices/IotHubs/*``
- IoT Hub Data Reader: ``Microsoft.Devices/IotHubs/*/read``
- IoT Hub Registry Contributor: ``Microsoft.Devices/IotHubs/devices/*``
- IoT Hub Twin Contributor: ``Microsoft.Devices/IotHubs/twins/*``

Role assignments live in the hub's store (scope: this hub), keyed by the principal's
object id (the token's ``oid``), as Azure role assignments are.
"""

from __future__ import annotations

import enum
from fnmatch import fnmatchcase

PREFIX = "Microsoft.Devices/IotHubs/"


class Permission(enum.Enum):
    """The data actions the local hub's service operations need."""

    DEVICES_READ = PREFIX + "devices/read"
    DEVICES_WRITE = PREFIX + "devices/write"
    DEVICES_DELETE = PREFIX + "devices/delete"
    TWINS_READ = PREFIX + "twins/read"
    TWINS_WRITE = PREFIX + "twins/write"
    DIRECT_METHODS = PREFIX + "directMethods/invoke/action"
    C2D_SEND = PREFIX + "cloudToDeviceMessages/send/action"
    C2D_FEEDBACK = PREFIX + "cloudToDeviceMessages/feedback/action"
    STATISTICS_READ = PREFIX + "statistics/read"
    JOBS_READ = PREFIX + "jobs/read"
    JOBS_WRITE = PREFIX + "jobs/write"
    CONFIGURATIONS_READ = PREFIX + "configurations/read"
    CONFIGURATIONS_WRITE = PREFIX + "configurations/write"
    CONFIGURATIONS_DELETE = PREFIX + "configurations/delete"
    CONFIGURATIONS_TEST_QUERIES = PREFIX + "configurations/testQueries/action"
    CONFIGURATIONS_APPLY_TO_EDGE = PREFIX + "configurations/applyToEdgeDevice/action"
    # The built-in endpoint's consumer groups and routes are Azure Resource Manager
    # settings on IoT Hub; on the local hub only a role granting every data action has them.
    HUB_SETTINGS_READ = PREFIX + "localhub/settings/read"
    HUB_SETTINGS_WRITE = PREFIX + "localhub/settings/write"


ROLES: dict[str, tuple[str, ...]] = {
    "IoT Hub Data Contributor": (PREFIX + "*",),
    "IoT Hub Data Reader": (PREFIX + "*/read",),
    "IoT Hub Registry Contributor": (PREFIX + "devices/*",),
    "IoT Hub Twin Contributor": (PREFIX + "twins/*",),
}


class UnknownRole(ValueError):
    pass


def role_name(text: str) -> str:
    """The canonical name of a role typed any which way ("iot hub data reader",
    "Data Reader", "DataReader"); UnknownRole names the roles there are."""
    wanted = "".join(text.lower().split())
    for name in ROLES:
        full = "".join(name.lower().split())
        if wanted in (full, full.removeprefix("iothub")):
            return name
    known = ", ".join(ROLES)
    raise UnknownRole(f"There is no data-plane role {text!r}; the roles are: {known}.")


def grants(role: str, permission: Permission) -> bool:
    action = permission.value.lower()
    return any(fnmatchcase(action, pattern.lower()) for pattern in ROLES.get(role, ()))


def roles_granting(permission: Permission) -> list[str]:
    """The built-in roles that allow ``permission``, narrowest first."""
    found = [name for name in ROLES if grants(name, permission)]
    return sorted(found, key=lambda name: name == "IoT Hub Data Contributor")
