"""Operational endpoints: health."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from .app import services_of

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz() -> Any:
    services = services_of(current_app)
    try:
        entries = services.store.count_entries()
    except Exception as exc:  # report, never raise, from a health check
        return jsonify(status="error", database=str(exc)), 503
    return jsonify(status="ok", entries=entries, index="ready" if services.reader.searcher() else "empty")
