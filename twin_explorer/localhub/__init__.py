"""The embedded IoT Hub: asyncio servers over a SQLite store."""
