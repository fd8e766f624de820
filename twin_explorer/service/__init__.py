"""Async facade over azure-iot-hub: typed results and plain-words errors for the UI."""
