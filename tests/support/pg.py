"""A fresh PostgreSQL database per test, on the server NEWSDESK_TEST_DATABASE_URL names; skips cleanly without one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV = "NEWSDESK_TEST_DATABASE_URL"


def server_url() -> str:
    """Return the test server's URL, skipping the test when it is not set or the server does not answer."""
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"{ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test): PostgreSQL tests skipped")
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {url} does not answer ({str(exc).strip().splitlines()[0]}): its tests skipped")
    return url


@contextmanager
def fresh_database(prefix: str = "newsdesk_t") -> Iterator[str]:
    """Yield the URL of a new, empty database (dropped afterwards, whoever is still connected)."""
    import psycopg

    url = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def end_sessions(engine: Any, sessions: str) -> int:
    """End (pg_terminate_backend) the sessions whose ``pid`` the SELECT ``sessions`` returns; return how many."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        ended = conn.execute(sa.text(f"SELECT count(pg_terminate_backend(pid)) FROM ({sessions}) AS chosen")).scalar()
        conn.commit()
    return int(ended or 0)
