"""Twin Explorer: a desktop explorer for Azure IoT Hub device and module twins."""

from importlib import metadata

try:
    __version__ = metadata.version("twin-explorer")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

APP_NAME = "Twin Explorer"
APP_ID = "twin-explorer"
