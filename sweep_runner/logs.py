"""Where the runner's log records go: the command line decides, the library only logs.

Library modules log through `logging.getLogger(__name__)`; `sweep` sends warnings to
stderr, and each worker process sends its records to its stderr, which the front
process points at `<checkpoints>/<study>/worker-N.log`.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

#: `--log-format` values whose records are JSON lines; any other is text.
JSON_FORMATS = ("jsonl",)


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(log_format: str, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Sends this process's log records to `stream` (default stderr), replacing any
    handler set before.

    Args:
        log_format: `jsonl` for JSON lines; `plain` or `rich` for text lines.
        level: the lowest level written.
        stream: where to write.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format in JSON_FORMATS:
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
