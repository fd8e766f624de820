"""Transports: each maps its protocol's events to core calls and core deliveries to
bytes (REST over aiohttp, MQTT over the sans-I/O codec). They do not know each other."""
