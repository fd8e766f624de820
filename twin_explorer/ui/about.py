"""The About dialog: what this build is made of."""

from __future__ import annotations

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from twin_explorer import APP_NAME
from twin_explorer.versions import component_versions


def about_versions() -> dict[str, str]:
    versions = component_versions()
    versions.pop("PySide6-Essentials", None)
    versions["Qt"] = qVersion()
    versions["PySide6"] = PySide6.__version__
    return versions


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle(f"About {APP_NAME}")
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"<b>{APP_NAME}</b><br>Browse, edit and watch Azure IoT Hub device and module "
            "twins, simulate modules, and work offline on a local hub."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.version_labels: dict[str, QLabel] = {}
        for name, version in about_versions().items():
            label = QLabel(version)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.version_labels[name] = label
            form.addRow(f"{name}:", label)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
