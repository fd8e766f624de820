"""The editor's widgets and where they sit; behaviour lives in ``editor.py``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from twin_explorer.ui.common import theme
from twin_explorer.ui.common.elided_label import ElidedLabel
from twin_explorer.ui.panes.twin_editor.code_view import CodeView
from twin_explorer.ui.panes.twin_editor.conflict_view import ConflictView
from twin_explorer.ui.panes.twin_editor.diff_view import SideBySideView
from twin_explorer.ui.panes.twin_editor.status_view import DesiredReportedView

BANNER_STYLES = {  # theme style sheets (``$role`` placeholders)
    "info": "background: $info_bg; border: 1px solid $info_border;",
    "warning": "background: $warning_bg; border: 1px solid $warning_border;",
    "error": "background: $error_bg; border: 1px solid $error_border;",
    "connection": "background: $warning_bg; border: 1px solid $warning_border;",
}
TAB_EDIT, TAB_DIFF, TAB_STATUS, TAB_CONFLICT = range(4)


def _titled(title: str, body: QWidget, name: str) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    label = QLabel(title)
    label.setObjectName(name)
    label.setWordWrap(True)
    layout.addWidget(label)
    layout.addWidget(body, 1)
    return box


class EditorLayout:
    """Builds the widgets of a ``TwinEditor`` onto ``owner``."""

    def __init__(self, owner: QWidget) -> None:
        # One line: elided in the middle, whole in the tooltip; the identity goes first.
        self.title = ElidedLabel("")
        self.title.setObjectName("twinTitle")
        self.info = ElidedLabel("", leftover=True)
        self.info.setObjectName("twinInfo")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header = QHBoxLayout()
        self.header.addWidget(self.title)
        self.header.addWidget(self.info, 1)

        self.busy = QProgressBar()
        self.busy.setObjectName("twinBusy")
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(6)
        self.busy.setTextVisible(False)
        self.busy.hide()

        self.banner = QLabel("")
        self.banner.setObjectName("twinBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()

        self.message = QLabel("Select a device or module to see its twin.")
        self.message.setObjectName("twinMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # Edit: the editable text | the read-only rest, issues underneath.
        self.text_view = CodeView()
        self.text_view.setObjectName("twinEditorText")
        self.text_view.setPlaceholderText("Tags and desired properties, as JSON")
        self.text_view.setToolTip(
            "Tags and desired properties as JSON, checked as you type; Ctrl+S saves"
        )
        self.readonly_view = CodeView(read_only=True)
        self.readonly_view.setObjectName("twinReadOnly")
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(
            _titled(
                "<b>Editable</b>: tags and desired properties (Save sends only your changes)",
                self.text_view,
                "editableTitle",
            )
        )
        self.show_metadata = QCheckBox("Show $metadata")
        self.show_metadata.setObjectName("showMetadata")
        self.show_metadata.setToolTip(
            "The hub's update times and versions for every key; Desired vs reported shows "
            "them per desired key"
        )
        readonly = _titled(
            "<b>Read-only</b>: identity, etag, versions, reported properties",
            self.readonly_view,
            "readOnlyTitle",
        )
        readonly.layout().insertWidget(1, self.show_metadata)
        self.split.addWidget(readonly)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.validity = QLabel("")
        self.validity.setObjectName("twinValidity")
        self.validity.setWordWrap(True)
        self.issues = QListWidget()
        self.issues.setObjectName("twinIssues")
        self.issues.setMaximumHeight(110)
        self.issues.hide()
        edit = QWidget()
        edit_layout = QVBoxLayout(edit)
        edit_layout.setContentsMargins(0, 0, 0, 0)
        edit_layout.addWidget(self.split, 1)
        edit_layout.addWidget(self.validity)
        edit_layout.addWidget(self.issues)

        # Diff: the hub's twin | the edit, and the patch Save would send.
        self.diff_view = SideBySideView("On the hub (as loaded)", "Your edit")
        self.diff_view.setObjectName("twinDiff")
        self.patch_view = CodeView(read_only=True)
        self.patch_view.setObjectName("twinPatch")
        self.patch_view.setMaximumHeight(140)
        diff = QWidget()
        diff_layout = QVBoxLayout(diff)
        diff_layout.setContentsMargins(0, 0, 0, 0)
        diff_layout.addWidget(self.diff_view, 1)
        patch_title = QLabel("<b>Save sends this merge patch</b> (null deletes a key):")
        patch_title.setWordWrap(True)
        diff_layout.addWidget(patch_title)
        diff_layout.addWidget(self.patch_view)

        self.status_view = DesiredReportedView()
        self.conflict_view = ConflictView()

        self.tabs = QTabWidget()
        self.tabs.setObjectName("twinTabs")
        self.tabs.insertTab(TAB_EDIT, edit, "Edit")
        self.tabs.insertTab(TAB_DIFF, diff, "Diff")
        self.tabs.insertTab(TAB_STATUS, self.status_view, "Desired vs reported")
        self.tabs.insertTab(TAB_CONFLICT, self.conflict_view, "Conflict")
        self.tabs.setTabEnabled(TAB_CONFLICT, False)
        for page in (edit, diff, self.status_view, self.conflict_view):
            page.setMinimumSize(100, 60)  # a small window squeezes the pages, not the window

        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.tabs)

        layout = QVBoxLayout(owner)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.header)
        layout.addWidget(self.busy)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)

    def add_buttons(self, actions) -> None:
        for action in actions:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            self.header.addWidget(button)

    def show_banner(self, text: str, kind: str = "info") -> None:
        if not text:
            self.banner.hide()
            return
        self.banner.setText(text)
        sheet = f"QLabel#twinBanner {{ {BANNER_STYLES[kind]} color: $text; padding: 4px; }}"
        theme.style(self.banner, sheet)
        self.banner.setProperty("kind", kind)
        self.banner.show()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
