"""The composition root: Flask app factory, blueprints, CLI and process wiring."""

from .app import create_app

__all__ = ["create_app"]
