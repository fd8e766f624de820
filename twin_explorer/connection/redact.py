"""Mask secrets in free text and in log records, keeping everything else readable.

Covers what can leak from this app: connection strings (SharedAccessKey=...,
SharedAccessSignature=...), SAS tokens and Authorization headers (sig=...), and registry
JSON or reprs with key fields ("primaryKey": "...", shared_access_key='...'), and
Entra ID sign-in: JWTs (access, refresh and ID tokens), OAuth token fields and client
secrets.
"""

from __future__ import annotations

import logging
import re

MASK = "****"
# How much of a client-supplied string a log line or error message quotes.
CLIP = 128

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Inside a connection string the whole token value is secret, up to the next ';'.
    (re.compile(r"(SharedAccessSignature\s*=\s*)[^;\"'\r\n]+", re.I), rf"\g<1>{MASK}"),
    # "=" right after "Key" so SharedAccessKeyName=iothubowner stays readable.
    (re.compile(r"(SharedAccessKey\s*=\s*)[^;\s\"'&,]+", re.I), rf"\g<1>{MASK}"),
    # Token signatures, also URL-encoded ones (sig%3D) inside query strings.
    (re.compile(r"(\bsig(?:=|%3D))[^&;\s\"',]+", re.I), rf"\g<1>{MASK}"),
    # Any *key name followed by a long base64 value: JSON, reprs, kwargs, env dumps. The
    # match starts at "key" itself: a leading [\w-]* (to take in "primary") made every
    # position of a long word rescan the rest of it, quadratic in the line's length; the
    # name before "key" is kept as it is either way.
    (
        re.compile(r"(key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9+/]{16,}={0,2}", re.I),
        rf"\g<1>{MASK}",
    ),
    # A JWT anywhere (Bearer headers, token answers, CBS put-tokens): header.claims.sig,
    # each part base64url; a JSON header always starts "eyJ". Not inside a run of
    # base64url characters: one start per run keeps it linear ("eyJ-eyJ-...").
    (re.compile(r"(?<![\w-])eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"), MASK),
    # OAuth fields whose value is secret whatever it looks like (opaque refresh tokens,
    # client secrets, device codes), in JSON, forms and reprs.
    (
        re.compile(
            r"((?:client_secret|access_token|refresh_token|id_token|device_code)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+",
            re.I,
        ),
        rf"\g<1>{MASK}",
    ),
)


def redact(text: str) -> str:
    """``text`` with every key and signature replaced by ****, in time linear in its length
    (it runs on every log line, some of which quote what a client sent)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def clip(text: str, limit: int = CLIP) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: a client id, topic or
    path quoted in a log line or error message cannot make that line (and every handler
    that formats, redacts and writes it) as long as what a hostile client sent."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} chars)"


class RedactingFilter(logging.Filter):
    """Rewrite each record so no handler can print a secret.

    The message is formatted here, redacted, and the args dropped: an argument's str() can
    hold a secret that no pattern over the template would see. Exception text is
    pre-rendered and redacted too, since formatters reuse ``record.exc_text``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format: logging reports it later; mask what we have
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one RedactingFilter to ``logger`` (root by default) and each of its handlers.

    Handler filters see records from every child logger; the logger's own filter covers
    records logged straight to it. Call again after adding handlers: it is idempotent.
    """
    target = logger if logger is not None else logging.getLogger()
    existing = [f for f in target.filters if isinstance(f, RedactingFilter)]
    shared = existing[0] if existing else RedactingFilter()
    for filterer in (target, *target.handlers):
        if not any(isinstance(f, RedactingFilter) for f in filterer.filters):
            filterer.addFilter(shared)
    return shared
