"""The composition root: Flask app factory, blueprints, CLI and process wiring."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `newsdesk --help` loads this package and must not pay for Flask.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
