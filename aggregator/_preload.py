"""Imported by the parse workers' fork server, once: it parses a small built-in feed there.

The language model and the libraries' lazily built tables then live in the fork server, and every
parse worker forked from it starts warm (sharing those pages copy-on-write) instead of spending
half a second loading them again, on every poll that starts a worker. Import it nowhere else.
"""

from __future__ import annotations

import logging

from .pipeline import warm_up

try:
    warm_up()
except Exception:  # the workers still work, cold; each warms itself up before its memory cap is set
    logging.getLogger("newsdesk.poll").exception("parse fork server warm-up failed")
