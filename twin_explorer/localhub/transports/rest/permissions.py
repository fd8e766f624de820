"""The Entra ID data action each REST handler needs (IoT Hub's permissions table).

Creating and updating an identity are both ``devices/write``; a bulk registry request
is a write too. A query returns twins, so it needs ``twins/read``. The local hub's own
telemetry read goes with reading the identity it belongs to.
"""

from __future__ import annotations

from twin_explorer.localhub.core.roles import Permission

HANDLER_PERMISSIONS: dict[str, Permission] = {
    "query": Permission.TWINS_READ,
    "list_devices": Permission.DEVICES_READ,
    "bulk_registry": Permission.DEVICES_WRITE,
    "put_device": Permission.DEVICES_WRITE,
    "get_device": Permission.DEVICES_READ,
    "delete_device": Permission.DEVICES_DELETE,
    "list_modules": Permission.DEVICES_READ,
    "put_module": Permission.DEVICES_WRITE,
    "get_module": Permission.DEVICES_READ,
    "delete_module": Permission.DEVICES_DELETE,
    "get_twin": Permission.TWINS_READ,
    "patch_twin": Permission.TWINS_WRITE,
    "replace_twin": Permission.TWINS_WRITE,
    "invoke_method": Permission.DIRECT_METHODS,
    "registry_statistics": Permission.STATISTICS_READ,
    "service_statistics": Permission.STATISTICS_READ,
    "info": Permission.STATISTICS_READ,
    "telemetry": Permission.DEVICES_READ,
    "job_query": Permission.JOBS_READ,
    "job_get": Permission.JOBS_READ,
    "job_create": Permission.JOBS_WRITE,
    "job_cancel": Permission.JOBS_WRITE,
    "configuration_listing": Permission.CONFIGURATIONS_READ,
    "configuration_get": Permission.CONFIGURATIONS_READ,
    "configuration_put": Permission.CONFIGURATIONS_WRITE,
    "configuration_delete": Permission.CONFIGURATIONS_DELETE,
    "configuration_test_queries": Permission.CONFIGURATIONS_TEST_QUERIES,
    "configuration_apply": Permission.CONFIGURATIONS_APPLY_TO_EDGE,
    "eventhub_info": Permission.HUB_SETTINGS_READ,
    "consumer_group_add": Permission.HUB_SETTINGS_WRITE,
    "consumer_group_remove": Permission.HUB_SETTINGS_WRITE,
    "eventhub_set_routes": Permission.HUB_SETTINGS_WRITE,
    "certificate_list": Permission.HUB_SETTINGS_READ,
    "certificate_get": Permission.HUB_SETTINGS_READ,
    "certificate_add": Permission.HUB_SETTINGS_WRITE,
    "certificate_code": Permission.HUB_SETTINGS_WRITE,
    "certificate_verify": Permission.HUB_SETTINGS_WRITE,
    "certificate_delete": Permission.HUB_SETTINGS_WRITE,
}
