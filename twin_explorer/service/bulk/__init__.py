"""Bulk twin changes, without Qt: choose twins, preview the change per twin, apply it
with etags, throttling, progress, cancel and resume, report, and revert (issue 18).

``choose`` (which twins), ``change`` (what to write), ``preview`` (what it does to one
twin), ``run`` (a run: preview, apply, report), ``store`` (a run on disk), ``throttle``
(the shared 429 pause), ``report`` (JSON Lines and CSV).
"""
