"""Questions the editor asks: non-blocking boxes (open() + signals, never exec())."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from twin_explorer.ui.chrome.confirm import confirm

Button = QMessageBox.StandardButton


def ask_unsaved(
    parent: QWidget,
    label: str,
    *,
    on_save: Callable[[], None],
    on_discard: Callable[[], None],
    on_cancel: Callable[[], None],
) -> QMessageBox:
    """Save / Discard / Cancel for an unsaved edit. Closing the box counts as Cancel."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Unsaved twin edit",
        f"The twin of {label} has changes that are not saved.",
        Button.Save | Button.Discard | Button.Cancel,
        parent,
    )
    box.setObjectName("unsavedChangesBox")
    box.setInformativeText("Save them to the hub, discard them, or cancel to keep editing.")
    box.setDefaultButton(Button.Save)
    box.setEscapeButton(Button.Cancel)

    def finished(_result: int) -> None:
        clicked = box.clickedButton()
        choice = box.standardButton(clicked) if clicked is not None else Button.Cancel
        if choice == Button.Save:
            on_save()
        elif choice == Button.Discard:
            on_discard()
        else:
            on_cancel()

    box.finished.connect(finished)
    box.open()
    return box


def confirm_replace(
    parent: QWidget, label: str, body_text: str, on_yes: Callable[[], None]
) -> QMessageBox:
    return confirm(
        parent,
        "Replace twin",
        f"Replace the tags and desired properties of {label} with the editor's text?",
        on_yes,
        yes_text="Replace",
        detail=(
            "Replace (PUT) overwrites tags and desired properties as a whole: any key that "
            "is not in the editor is removed, and devices receive the complete desired "
            "document. Save sends only your changes and is usually what you want.\n\n"
            "The body to send:\n" + body_text
        ),
    )
