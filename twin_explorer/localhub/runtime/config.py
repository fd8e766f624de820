"""Where a local hub listens unless told otherwise.

Kept apart from the server so building the top-level parser stays cheap (the app parses
its command line too); ``HubServer`` and the ``hub`` command use the same values.
"""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"  # this machine only
DEFAULT_HOSTNAME = "localhost"
DEFAULT_REST_PORT = 8443
DEFAULT_MQTT_PORT = 8883  # the device SDK dials 8883, fixed (A.1)
DEFAULT_AMQP_PORT = 5671  # AMQP clients dial 5671 (.NET always does)
DEFAULT_PROXY_PORT = 8880
