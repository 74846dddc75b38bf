"""Log line formats: the human one, and JSON (one object per line) for log shippers (`log_format = "json"`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# What every LogRecord carries; anything else on a record came from `extra=` and is worth shipping.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON (never raises on odd extra values: they become strings)."""
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii keeps the line plain ASCII; a newline inside a value is escaped, so one record is one line.
        return json.dumps(data, default=str)


def use_log_format(log_format: str) -> None:
    """Switch the root logger's handlers to ``log_format`` ("text" or "json")."""
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
