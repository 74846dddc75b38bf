"""The site's address as readers see it: server.public_url when set (behind a proxy), else the request's own.

Atom and RSS feeds, OpenSearch, oEmbed answers, story links and the embeds all write absolute
URLs; they take them from here, so a proxy's path prefix is handled in one place.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for

from .services import services_of


def public_root() -> str:
    """Return the site's base URL without a trailing slash (server.public_url, else the request's)."""
    return (services_of(current_app).public_url or request.url_root).rstrip("/")


def public_url_for(endpoint: str, **values: Any) -> str:
    """Return the absolute URL of an endpoint as readers see it: under server.public_url when set, else this request's."""
    configured = services_of(current_app).public_url
    if not configured:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)
    root = request.script_root
    if root and path.startswith(root + "/"):
        # A proxy that passes its prefix on (SCRIPT_NAME) makes url_for include it; public_url has it already.
        path = path[len(root) :]
    return configured.rstrip("/") + path
