"""A local hub's ready info as the details dialog shows it, with a key tests look for."""

from __future__ import annotations

from twin_explorer.service.local_hub import LocalHubInfo

KEY = "k" * 44  # as long as a real base64 key
INFO = LocalHubInfo(
    hostname="localhost",
    service_connection_string=(
        f"HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
    ),
    ca_cert="/home/someone/.local/share/twin-explorer/hub/tls/ca.pem",
    rest_port=40001,
    mqtt_port=40002,
    proxy_port=40003,
    data_dir="/home/someone/.local/share/twin-explorer/hub",
)
