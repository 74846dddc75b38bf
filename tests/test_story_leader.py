"""Story assignment on a scaled-out PostgreSQL store: commit order, the hand-over from the sequence cursor, one assigner at a time."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.changelog import ChangeLog
from aggregator.config import Config
from aggregator.models import Feed
from aggregator.sessions import with_application_name
from aggregator.store import Store, open_store
from aggregator.store_stories import SqlStoryStore, StoriesMoved, batch_articles
from aggregator.story_leader import StoryLeader, assign_stories, move_position, stored_position, story_assigner

from .conftest import make_config
from .support.cli import newsdesk
from .support.nodes import free_port, running, start_node
from .support.nodes import until as wait_until
from .support.pg import end_sessions
from .test_follower import until
from .test_store import make_entry

pytestmark = pytest.mark.postgres


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def leaders(stores: Callable[[], Store], config: Config) -> Iterator[Callable[[str], StoryLeader]]:
    """Yield a factory of pollers' story leaders, each on a store of its own; their locks are given back at the end."""
    made: list[StoryLeader] = []

    def make(name: str) -> StoryLeader:
        made.append(StoryLeader(stores(), config, name))
        return made[-1]

    yield make
    for leader in made:
        leader.lock.release()


def members(store: Store) -> dict[str, str]:
    """Return entry id -> story id of every assigned entry."""
    with store.engine.connect() as conn:
        return {str(e): str(s) for e, s in conn.execute(sa.text("SELECT entry_id, story_id FROM story_members"))}


def assert_each_entry_has_one_story(store: Store) -> None:
    """Every stored entry is in exactly one story, and the stories count each of them once."""
    with store.engine.connect() as conn:
        counted = conn.execute(sa.text("SELECT sum(members) FROM stories WHERE merged_into IS NULL")).scalar()
        documents = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'stories_documents'")).scalar()
    entries = {entry.id for entry in store.iter_entries()}
    assert set(members(store)) == entries  # a primary key: at most one story each
    assert counted == len(entries) and int(documents) == len(entries)


def two_writers_and_a_leader(
    stores: Callable[[], Store], leaders: Callable[[str], StoryLeader]
) -> tuple[Store, Store, Feed, Feed, StoryLeader]:
    """Return two writers (stores of their own) with a feed each, and a poller assigning stories by position."""
    a, b = stores(), stores()
    fa, fb = a.add_feed("https://a.example/feed"), b.add_feed("https://b.example/feed")
    leader = leaders("poller-a")
    leader.step()
    assert leader.leading and stored_position(leader.changelog.store.engine) is not None
    return a, b, fa, fb, leader


def test_a_transaction_open_across_a_later_commit_leaves_no_entry_without_a_story(
    stores: Callable[[], Store], leaders: Callable[[str], StoryLeader]
) -> None:
    a, b, fa, fb, leader = two_writers_and_a_leader(stores, leaders)
    node = leader.changelog.store
    early, late = make_entry(fa.key, 1), make_entry(fb.key, 2)
    with a.transaction():
        a.save_entries(fa.id, [early])  # the lower sequence number, committed last
        b.save_entries(fb.id, [late])  # committed first with the higher one
        assert [c.entry_id for c in node.changes_since(0)] == [late.id]  # a sequence cursor would pass `early`
        # The assigner reads nothing yet: the open transaction is older than the committed one.
        assert leader.step() == 0 and members(node) == {}
    until(lambda: leader.step() >= 0 and set(members(node)) == {early.id, late.id})
    assert_each_entry_has_one_story(node)


def test_a_transaction_ordered_first_that_logs_last_gets_its_story(
    stores: Callable[[], Store], leaders: Callable[[str], StoryLeader]
) -> None:
    a, b, fa, fb, leader = two_writers_and_a_leader(stores, leaders)
    node = leader.changelog.store
    first, second = make_entry(fa.key, 1), make_entry(fb.key, 2)
    with ExitStack() as open_b:
        with a.transaction():
            a.set_feed_enabled(fa.id, True)  # a write: transaction a gets its id now
            open_b.enter_context(b.transaction())
            b.save_entries(fb.id, [second])  # the lower sequence number, a transaction id after a's
            a.save_entries(fa.id, [first])
        until(lambda: leader.step() >= 0 and first.id in members(node))
        assert set(members(node)) == {first.id}
    until(lambda: leader.step() >= 0 and set(members(node)) == {first.id, second.id})
    assert_each_entry_has_one_story(node)


def test_the_sequence_cursor_hands_over_to_positions_and_back_to_the_cli(
    stores: Callable[[], Store], config: Config, leaders: Callable[[str], StoryLeader]
) -> None:
    store = stores()
    feed = store.add_feed("https://wire.example/feed")
    store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(1, 4)])
    stories = SqlStoryStore(store.engine)
    assigner = story_assigner(config, stories)
    # `newsdesk run` on PostgreSQL: the sequence cursor, as on SQLite.
    assert assign_stories(store, stories, assigner) == 3
    assert stored_position(store.engine) is None and stories.cursor() == store.last_seq()
    before = members(store)
    store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(4, 7)])

    # The first poller to assign switches the store to positions, from where the sequence cursor stood.
    leader = leaders("poller-a")
    until(lambda: leader.step() >= 0 and len(members(store)) == 6)  # another session may hold the watermark
    assert leader.assigned == 3 and stored_position(store.engine) is not None
    after = members(store)
    assert {i: after[i] for i in before} == before and len(after) == 6

    # From now on the CLI assigns by position too, and only while no poller holds the lock.
    store.save_entries(feed.id, [make_entry(feed.key, 7)])
    assert assign_stories(store, stories, assigner) == 0  # the poller assigns
    until(lambda: leader.step() >= 0 and len(members(store)) == 7)
    leader.lock.release()
    store.save_entries(feed.id, [make_entry(feed.key, 8)])
    until(lambda: assign_stories(store, stories, assigner) >= 0 and len(members(store)) == 8)
    assert_each_entry_has_one_story(store)


def test_one_assigner_at_a_time_and_another_takes_over_when_its_session_ends(
    stores: Callable[[], Store], leaders: Callable[[str], StoryLeader], caplog: pytest.LogCaptureFixture
) -> None:
    store = stores()
    feed = store.add_feed("https://wire.example/feed")
    one, two = leaders("poller-1"), leaders("poller-2")
    one.step()
    two.step()
    assert one.leading and not two.leading
    store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(1, 4)])
    until(lambda: two.step() == 0 and one.step() >= 0 and len(members(store)) == 3)
    assert two.assigned == 0

    # The holder's session ends (pg_terminate_backend): the lock goes with it, the other takes over.
    lock_sessions = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert end_sessions(store.engine, lock_sessions) == 1
    store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(4, 7)])
    until(lambda: two.step() >= 0 and len(members(store)) == 6)
    assert two.leading and two.assigned == 3
    with caplog.at_level(logging.INFO, logger="newsdesk.stories"):
        assert one.step() == 0 and one.step() == 0  # it noticed, said so once, and stands by
    lost = [r for r in caplog.records if "lost the story lock" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING and "poller-1" in lost[0].getMessage()
    assert "terminating connection due to administrator command" in lost[0].getMessage()
    assert not one.leading and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert_each_entry_has_one_story(store)


def test_a_batch_read_from_a_stale_position_is_dropped(
    stores: Callable[[], Store], config: Config, leaders: Callable[[str], StoryLeader]
) -> None:
    store = stores()
    feed = store.add_feed("https://wire.example/feed")
    leaders("poller-a").step()  # positions from the start
    start = stored_position(store.engine)
    assert start is not None
    store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(1, 4)])
    changelog = ChangeLog(store)
    until(lambda: len(changelog.committed_after(start)) == 3)
    batch = changelog.committed_after(start)
    # Two assigners read the same batch (one has not yet noticed that its lock went): the first one wins.
    first, stale = SqlStoryStore(store.engine), SqlStoryStore(store.engine)
    articles = batch_articles(first, story_assigner(config, first), changelog, [c.entry_id for c in batch])
    assert first.assign_moving(story_assigner(config, first), articles, move_position(start, batch[-1].position)) == 3
    with pytest.raises(StoriesMoved):
        stale.assign_moving(story_assigner(config, stale), articles, move_position(start, batch[-1].position))
    assert stored_position(store.engine) == batch[-1].position
    assert_each_entry_has_one_story(store)


def test_run_and_poll_refuse_to_poll_beside_pollers(pg_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{pg_url}"\n')
    poller = open_store(with_application_name(pg_url, "newsdesk-poller poller-7"))
    try:
        with poller.engine.connect():  # a poller's session, as pg_stat_activity shows it
            for command in (["run"], ["poll"]):
                result = newsdesk(config, *command, check=False)
                assert result.returncode == 1
                lines = result.stderr.strip().splitlines()
                assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
                assert "`newsdesk poller` nodes" in lines[0] and "poller-7" in lines[0]
    finally:
        poller.close()
    # Gone: `poll` runs (nothing is due).
    assert newsdesk(config, "poll").returncode == 0


def test_a_poller_refuses_to_start_beside_a_running_run(pg_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    port = free_port()
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{pg_url}"\n[server]\nport = {port}\n[node]\nname = "box-1"\n'
    )
    run = start_node(config, tmp_path / "run.log", "run")
    with running(run):
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 60, "newsdesk run to serve")
        result = newsdesk(config, "poller", "--once", check=False)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "`newsdesk run` or `newsdesk poll`" in lines[0] and "box-1" in lines[0]
    # The run stopped: the poller starts, polls (nothing is due) and exits.
    assert newsdesk(config, "poller", "--once").returncode == 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
