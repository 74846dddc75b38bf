"""Store and index failures reach the operator as the project's own errors, chained to their cause.

A read from a damaged database and a damaged or locked search index become StorageError and
SearchIndexError: a 503 from the web, one line from the CLI, never a raw library error or a traceback.
"""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError
from whoosh import index as whoosh_index

from aggregator.errors import SearchIndexError, StorageError
from aggregator.store import Store, open_store
from index.indexer import Indexer, IndexLocation
from index.search.engine import IndexReader
from web.app import create_app

from .conftest import make_config
from .support.cli import newsdesk
from .test_index_indexer import make_entry


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def damage_entries_table(db_path: Path) -> None:
    """Replace the entries table with one lacking its columns: the schema check cannot mend that, reads fail."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE entries")
        conn.execute("CREATE TABLE entries (id TEXT PRIMARY KEY)")


def filled(tmp_path: Path) -> tuple[Store, Path]:
    """Return a store (the config's database) holding three entries, and its file."""
    config = make_config(tmp_path)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.db_url)
    feed = store.add_feed("https://example.org/feed")
    store.save_entries(feed.id, [make_entry(n) for n in range(3)])
    return store, config.data_dir / "newsdesk.db"


def test_a_failed_read_is_a_storage_error_chained_to_the_database_error(tmp_path: Path) -> None:
    store, db_path = filled(tmp_path)
    damage_entries_table(db_path)
    for read in (lambda: store.get_entry("e00001"), store.list_feeds, lambda: list(store.iter_entries())):
        with pytest.raises(StorageError) as caught:
            read()
        assert isinstance(caught.value.__cause__, SQLAlchemyError)
        assert "\n" not in str(caught.value) and "no such column" in str(caught.value)
    store.close()


def test_the_web_answers_503_when_the_store_fails(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    app = create_app(config)
    damage_entries_table(config.data_dir / "newsdesk.db")
    client = app.test_client()
    answer = client.get("/api/v1/feeds")
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "unavailable"
    page = client.get("/feeds")
    assert page.status_code == 503 and b"Traceback" not in page.data


def test_the_cli_says_one_line_when_the_store_fails(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    newsdesk(path, "feeds", "list")  # creates the database
    damage_entries_table(tmp_path / "data" / "newsdesk.db")
    result = newsdesk(path, "feeds", "list", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("newsdesk: error: ") and "database" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def damage_index(index_dir: Path) -> None:
    """Overwrite the live index's table of contents with garbage."""
    live = IndexLocation(index_dir).current_dir()
    assert live is not None
    tables_of_contents = list(live.glob("*.toc"))
    assert tables_of_contents
    for toc in tables_of_contents:
        toc.write_bytes(b"not a table of contents")


# Whoosh leaves the damaged file open when it fails to read it (closed when collected, with a ResourceWarning).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_damaged_index_is_a_search_index_error_for_readers_writers_web_and_cli(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    config = make_config(tmp_path)
    store, _ = filled(tmp_path)
    Indexer(config.index_dir, store).catch_up()
    damage_index(config.index_dir)

    reader = IndexReader(config.index_dir)
    with pytest.raises(SearchIndexError) as caught, reader.searcher():
        pass
    assert isinstance(caught.value.__cause__, whoosh_index.IndexError)

    answer = create_app(config).test_client().get("/api/v1/search?q=lantern")
    assert answer.status_code == 503 and answer.get_json()["error"] == "unavailable"

    result = newsdesk(path, "search", "lantern", check=False)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("newsdesk: error: the search index in ") and "cannot be read" in last
    assert "Traceback" not in result.stderr

    # A writer does not stop at the damage: it rebuilds the index from the store, and readers recover.
    Indexer(config.index_dir, store).catch_up()
    with reader.searcher() as searcher:
        assert searcher is not None and searcher.doc_count() == 3
    store.close()
    del caught
    gc.collect()  # Whoosh's open files are closed here, while ResourceWarning is ignored


def test_a_locked_index_is_a_search_index_error_and_the_next_catch_up_succeeds(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store, _ = filled(tmp_path)
    indexer = Indexer(config.index_dir, store)
    ix, _path = indexer.open()
    holder = ix.writer()  # another writer holds the index's lock
    try:
        with pytest.raises(SearchIndexError) as caught:
            indexer.catch_up()
        assert isinstance(caught.value.__cause__, whoosh_index.LockError)
    finally:
        holder.cancel()
    assert indexer.catch_up().upserts == 3
    store.close()
