"""The About dialog: what this build is made of, and where it keeps its files."""

from __future__ import annotations

from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer import APP_NAME, paths
from twin_explorer.ui.chrome.settings import settings_file
from twin_explorer.versions import component_versions


def app_folders() -> dict[str, Path]:
    """Where the app keeps its files (``TWIN_EXPLORER_HOME`` moves them all)."""
    return {
        "Data": paths.data_dir(),
        "Logs": paths.log_dir(),
        "Settings": settings_file().parent,
    }


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
        folders = QFormLayout()
        self.folder_labels: dict[str, QLabel] = {}
        for name, folder in app_folders().items():
            folders.addRow(f"{name}:", self._folder_row(name, folder))
        layout.addSpacing(layout.spacing() * 2)  # a new part: where files live
        layout.addWidget(QLabel("<b>Where Twin Explorer keeps its files</b>"))
        layout.addLayout(folders)
        self.copied = QLabel("")
        self.copied.setObjectName("aboutCopied")
        layout.addWidget(self.copied)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _folder_row(self, name: str, folder: Path) -> QHBoxLayout:
        label = QLabel(str(folder))
        label.setObjectName(f"folder{name}")
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_labels[name] = label
        open_button = QPushButton("Open")
        open_button.setObjectName(f"open{name}Folder")
        open_button.setToolTip(f"Open the {name.lower()} folder in the file manager")
        open_button.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        )
        copy_button = QPushButton("Copy")
        copy_button.setObjectName(f"copy{name}Folder")
        copy_button.setToolTip(f"Copy the {name.lower()} folder's path")
        copy_button.clicked.connect(lambda: self._copy(name, folder))
        row = QHBoxLayout()
        row.addWidget(label, 1)
        row.addWidget(open_button)
        row.addWidget(copy_button)
        return row

    def _copy(self, name: str, folder: Path) -> None:
        QGuiApplication.clipboard().setText(str(folder))
        self.copied.setText(f"Copied the {name.lower()} folder's path.")
