"""Log lines an operator can read and a machine can split: ``key=value`` pairs, quoted where needed."""

from __future__ import annotations

import json
from typing import Any


def log_fields(**fields: Any) -> str:
    """Return ``key=value`` pairs for a log line, quoting values that need it (None values are left out)."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if not text or any(c in text for c in ' "='):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)
