"""Shared fixtures: temporary configs and stores, real servers, the shared corpus, a browser."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import Config, config_from_dict
from aggregator.store import Store, open_store

from .support.browser import launch_browser
from .support.httpserver import FeedServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def shared_dir() -> Path:
    """Return ../shared, skipping the test when it is absent."""
    if not (SHARED / "corpus").is_dir():
        pytest.skip("../shared/corpus is not present")
    return SHARED


@pytest.fixture
def seed_feed() -> Path:
    """Return the seed story's feed file, skipping when ../shared is absent."""
    path = SHARED / "seed" / "story-feed.xml"
    if not path.exists():
        pytest.skip("../shared/seed is not present")
    return path


def make_config(tmp_path: Path, **table: Any) -> Config:
    """Return a Config with data under tmp_path and the given TOML-shaped options."""
    table.setdefault("data_dir", str(tmp_path / "data"))
    return config_from_dict(table, label="test-config.toml")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Return a default Config whose data lives in a temp dir."""
    return make_config(tmp_path)


def store_urls(tmp_path: Path) -> list[str]:
    """Return the database URLs store tests run against: SQLite always, PostgreSQL when configured."""
    urls = [f"sqlite:///{tmp_path / 'store.db'}"]
    if os.environ.get("NEWSDESK_TEST_DATABASE_URL"):
        urls.append(os.environ["NEWSDESK_TEST_DATABASE_URL"])
    return urls


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Yield an empty Store on SQLite, and on PostgreSQL when NEWSDESK_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        url = os.environ.get("NEWSDESK_TEST_DATABASE_URL")
        if not url:
            pytest.skip("NEWSDESK_TEST_DATABASE_URL is not set")
        import uuid

        import sqlalchemy as sa

        from aggregator.store import create_engine_for

        # A schema of its own per test, so parallel runs never see each other's tables.
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine_for(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in url else "?"
        store = open_store(f"{url}{separator}options=-csearch_path%3D{schema}")
        request.addfinalizer(lambda: _drop_schema(admin, schema))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL database of its own (skips without NEWSDESK_TEST_DATABASE_URL)."""
    from .support.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def stores(pg_url: str) -> Iterator[Callable[[], Store]]:
    """Yield a factory of Stores on one PostgreSQL database (each its own engine: separate processes' view)."""
    opened: list[Store] = []

    def make() -> Store:
        opened.append(open_store(pg_url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """Yield a running programmable HTTP server on 127.0.0.1."""
    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Yield a headless Chromium shared by the session's browser tests."""
    with launch_browser() as b:
        yield b


def _drop_schema(engine: Any, schema: str) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()
