"""Logging: a rotating file in the log dir, and warnings on stderr.

Every handler gets the redacting filter, so no key or signature reaches a log line
whatever a caller passes in.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

from twin_explorer import paths
from twin_explorer.connection.redact import RedactingFilter

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(name: str, *, verbose: bool = False) -> logging.Logger:
    """Configure the root logger once for a process; ``name`` names the log file."""
    root = logging.getLogger()
    if getattr(root, "_twin_explorer_configured", False):
        return root
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handlers: list[logging.Handler] = []
    file_handler = logging.handlers.RotatingFileHandler(
        paths.log_dir() / f"{name}.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    handlers.append(file_handler)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # Verbose output is read to follow timing (who waited for what): give it the time.
    stderr.setFormatter(
        logging.Formatter(_FORMAT if verbose else "%(levelname)s %(name)s: %(message)s")
    )
    handlers.append(stderr)
    redacting = RedactingFilter()
    for handler in handlers:
        handler.addFilter(redacting)
        root.addHandler(handler)
    # Third-party loggers are chatty at INFO (paho, msrest, urllib3); keep them to warnings.
    for noisy in ("azure", "msrest", "urllib3", "paho", "aiohttp.access", "uamqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root._twin_explorer_configured = True  # type: ignore[attr-defined]
    return root
