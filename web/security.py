"""Security headers on every response: a strict Content-Security-Policy for HTML pages, nosniff for all.

Pages show what thousands of feeds nobody controls supplied. The sanitizer (aggregator.normalize.html)
is the first wall; the policy is the second: should markup ever slip through, a page runs no script
at all (it has none of its own: facets, pages and copies are plain links and <details>), loads styles
only from this site, frames only the video players the sanitizer keeps, and cannot be framed by other
sites. Images and media come from anywhere over http(s), as articles' pictures do.

Responses that set their own policy keep it: the iframe embed (/embed/related) sends a nonce-based one
with the operator's frame-ancestors (server.frame_ancestors), since partner sites must frame it.
"""

from __future__ import annotations

from flask import Flask, Response

from aggregator.normalize.html import _VIDEO_HOSTS

#: The policy of every HTML page that does not set its own.
PAGE_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'none'",
        "style-src 'self'",
        "img-src 'self' https: http:",
        "media-src https: http:",
        # Protocol-relative players (//www.youtube.com/embed/...) resolve to https on an https page.
        "frame-src " + " ".join(f"https://{host}" for host in sorted(_VIDEO_HOSTS)),
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
#: Cross-site links (an article, a video) learn our origin, never the search that led there.
PAGE_REFERRER_POLICY = "strict-origin-when-cross-origin"


def security_headers(response: Response) -> Response:
    """Return the response with nosniff, and for HTML a CSP and a Referrer-Policy unless it set its own."""
    # nosniff on everything: JSON, feeds and scripts are never to be read as HTML or script by a browser.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("Referrer-Policy", PAGE_REFERRER_POLICY)
    return response


def install(app: Flask) -> None:
    """Add the security headers to every response the app sends."""
    app.after_request(security_headers)
