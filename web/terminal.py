"""Text for a terminal: what a feed wrote must never reach the operator's terminal as control codes."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (0x9b is a CSI on terminals that read 8-bit
# controls), and the bidirectional overrides that reorder what a line appears to say.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Return ``text`` with every control character shown as U+FFFD instead of sent to the terminal."""
    return _CONTROL.sub("\ufffd", text)
