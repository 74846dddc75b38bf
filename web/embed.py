"""Embeds for other sites: the script (/embed.js) and the iframe page (/embed/related)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.exceptions import NotFound

from aggregator.errors import QueryError

from .public_url import public_url_for
from .related import (
    CACHE_CONTROL,
    kept_related_items,
    limit_arg,
    requested_story,
    resolve_article,
    seconds_until_allowed,
    story_items,
)

embed = Blueprint("embed", __name__)

_SCRIPT = Path(__file__).resolve().parent / "static" / "embed.js"


@embed.get("/embed.js")
def embed_script() -> Any:
    response = Response(_SCRIPT.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600, stale-while-revalidate=86400"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)


def frame_policy(nonce: str, frame_ancestors: str) -> str:
    """Return the iframe page's Content-Security-Policy: nothing but its own nonced style and script."""
    return "; ".join(
        (
            "default-src 'none'",
            f"style-src 'nonce-{nonce}'",
            f"script-src 'nonce-{nonce}'",
            "img-src 'none'",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {frame_ancestors.strip() or '*'}",
        )
    )


@embed.get("/embed/related")
def related_frame() -> Any:
    # Whatever goes wrong, the partner site's readers see the same neutral box, never a developer's
    # message or JSON; the reason rides along in a data attribute for whoever inspects the frame.
    status = 200
    reason = None
    items: list[dict[str, Any]] = []
    retry_after = seconds_until_allowed(current_app)
    if retry_after:
        status, reason = 429, f"rate limit reached; retry in {retry_after} s"
    else:
        try:
            story_id = requested_story()
            if story_id is not None:
                items = story_items(story_id, limit_arg())
            else:
                article, entry = resolve_article()
                items = kept_related_items(article, entry, limit_arg())
        except QueryError as exc:
            status, reason = 400, str(exc)
        except NotFound as exc:
            status, reason = 404, str(exc.description)
    nonce = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    html = render_template(
        "embed/related.html",
        items=items,
        status=status,
        reason=reason,
        nonce=nonce,
        home=public_url_for("pages.search_page"),
    )
    response = Response(html, status=status, mimetype="text/html")
    config = current_app.config["NEWSDESK"]
    response.headers["Content-Security-Policy"] = frame_policy(nonce, config.server.frame_ancestors)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
        # Explicit freshness would let a browser reuse the empty box after the limit has passed (RFC 9111 3).
        response.headers["Cache-Control"] = "no-store"
    else:
        # The nonce changes per response, so shared caches may not store the page; browsers may reuse it briefly.
        response.headers["Cache-Control"] = CACHE_CONTROL.replace("public", "private").split(", s-maxage")[0]
    return response
