"""The desktop app: PySide6 widgets and Qt item models over the service layer."""
