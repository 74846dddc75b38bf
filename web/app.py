"""The Flask application factory."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from aggregator.config import Config
from aggregator.errors import QueryError, SearchIndexError, StorageError
from index.search.budget import QueryTooComplex

from .dates import utc_label
from .public_url import public_url_for
from .security import install as install_security_headers
from .serialize import iso
from .services import Role, Services, build_services, services_of

# services_of lives in services.py (the blueprints import it from there); tests and callers may ask here too.
__all__ = ["create_app", "services_of"]


def create_app(config: Config, services: Services | None = None) -> Flask:
    """Return the web application for ``config`` (web workers only read the index)."""
    app = Flask(__name__)
    app.config["NEWSDESK"] = config
    if services is None:
        services = build_services(config, Role.WEB)
    elif services.config != config:
        # The same store and index seen through this app's config (its limits, ranking, public URL).
        services = dataclasses.replace(services, config=config)
    app.extensions["newsdesk"] = services
    services.metrics.install(app)  # request timing for /metrics (a registry per Services, never the global one)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # One way of writing a time for readers, on every page and in the iframe embed (web.dates).
    app.add_template_filter(utc_label, "utc_label")
    app.add_template_filter(iso, "iso")  # the machine form, for <time datetime>
    app.add_template_global(public_url_for)  # absolute links as readers see them (behind a proxy too)

    from .api import api
    from .embed import embed
    from .feeds import feeds
    from .ops import ops
    from .pages import pages
    from .related import related_api
    from .stories import stories
    from .syndication import syndication

    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(ops)
    app.register_blueprint(related_api)
    app.register_blueprint(embed)
    app.register_blueprint(syndication)
    app.register_blueprint(feeds)
    app.register_blueprint(stories)
    install_security_headers(app)

    def wants_json() -> bool:
        # oEmbed consumers are programs expecting JSON (oEmbed 1.0 section 2.3.4), errors included.
        return (
            request.path.startswith("/api/")
            or request.path == "/oembed"
            or request.accept_mimetypes.best == "application/json"
        )

    @app.errorhandler(QueryError)
    def query_error(exc: QueryError) -> Any:
        if wants_json():
            # A query over its work limits is told apart, so a client knows to ask for less rather than fix a typo.
            error = "query_too_complex" if isinstance(exc, QueryTooComplex) else "bad_request"
            return jsonify(error=error, message=str(exc)), 400
        return str(exc), 400

    @app.errorhandler(StorageError)
    def storage_error(exc: StorageError) -> Any:
        app.logger.error("storage error: %s", exc)
        if wants_json():
            return jsonify(error="unavailable", message="the database is unavailable; try again shortly"), 503
        return "The database is unavailable; try again shortly.", 503

    @app.errorhandler(SearchIndexError)
    def index_error(exc: SearchIndexError) -> Any:
        # Damaged or missing: the writer process rebuilds it from the store; the path stays in the log.
        app.logger.error("search index error: %s", exc)
        message = "the search index is unavailable while it is rebuilt; try again shortly"
        if wants_json():
            return jsonify(error="unavailable", message=message), 503, {"Retry-After": "30"}
        return message[0].upper() + message[1:] + ".", 503, {"Retry-After": "30"}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if wants_json():
            return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code
        return exc

    return app
