"""How an identity is named in text: ``deviceId`` or ``deviceId/moduleId``.

It is IoT Hub's own form (a module's MQTT client id), and what the app shows, logs and
keys its per-identity state by: one function, so every place names it the same way.
"""

from __future__ import annotations


def identity_path(device_id: str, module_id: str | None = None) -> str:
    return f"{device_id}/{module_id}" if module_id else device_id
