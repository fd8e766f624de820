"""Record the stream to a JSON Lines file as it arrives (one ``EventRecord.to_json`` a
line), written a batch at a time."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from twin_explorer.service.events.record import EventRecord


class Recorder:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._out = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        self.count = 0

    def write(self, records: Iterable[EventRecord]) -> None:
        lines = [json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records]
        self._out.writelines(lines)
        self._out.flush()
        self.count += len(lines)

    def close(self) -> None:
        self._out.close()
