"""IoT Hub twin semantics shared by the local hub and the editor (pure Python, stdlib only).

merge (RFC 7386 merge patch), diff (minimal patch between two documents), validate
(IoT Hub's key, value, depth and size rules), document (one twin's versions, etag and
``$metadata`` through service and device operations), locate (issue path -> line/column).
"""

from __future__ import annotations

from twin_explorer.twin.clock import NEVER, utc_now
from twin_explorer.twin.diff import make_patch
from twin_explorer.twin.document import TwinDocument
from twin_explorer.twin.errors import InvalidTwin, TwinIssue
from twin_explorer.twin.locate import locate, path_in_twin
from twin_explorer.twin.merge import is_noop, merge_patch
from twin_explorer.twin.validate import check_size, section_size, validate_section

__all__ = [
    "NEVER",
    "InvalidTwin",
    "TwinDocument",
    "TwinIssue",
    "check_size",
    "is_noop",
    "locate",
    "make_patch",
    "merge_patch",
    "path_in_twin",
    "section_size",
    "utc_now",
    "validate_section",
]
