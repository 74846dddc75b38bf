"""Late entries in a restarted writer: do they join their event's story, and what does that cost?

A writer holds the last four days of stories in memory when it starts (more as it runs). An entry
older than those (a feed added with its backlog, a report published late) is placed by reading the
stories open in its week from the database. This bench takes a store `bench/stories_speed.py --data-dir
DIR` built (228,020 entries), copies its database twice, and on each copy stores N copies of random
stored entries as a new outlet's, then times one fresh writer assigning them (`assign_pending`):

- late: the copies keep their originals' dates (1987 to 2014, in random order);
- baseline: the same copies dated at the store's newest time (a poll of today's news).

It prints both times, their ratio, and how many copies landed in their original's story (a copy of a
stored article is the same event by construction).

    .venv/bin/python bench/late_entries.py --data-dir /work/wt/benchdata-storyspeed [--count 2000]

Skips (exit 0) when the data dir holds no store.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def late_copies(entries: list[Any], feed: Any, when: datetime | None) -> list[Any]:
    """Return copies of ``entries`` as ``feed``'s, at their own dates (``when`` None) or all at ``when``."""
    copies = []
    for n, entry in enumerate(entries):
        source = dataclasses.replace(
            entry.source, feed_url=feed.url, title=feed.title, site_url="https://late.example/"
        )
        copies.append(
            dataclasses.replace(
                entry,
                id=f"late-{n}",
                identity=f"late-{n}",
                url=f"https://late.example/{n}",
                feed_key=feed.key,
                source=source,
                published_at=entry.published_at if when is None else when,
            )
        )
    return copies


def run_once(database: Path, workdir: Path, label: str, count: int, seed: int, late: bool) -> tuple[float, int]:
    """Assign ``count`` copies on a copy of ``database``; return (seconds, copies in their original's story)."""
    import sqlalchemy as sa

    from aggregator.store import open_store
    from aggregator.store_stories import SqlStoryStore, assign_pending
    from aggregator.stories import StoryAssigner
    from aggregator.tables import entries_table

    copy = workdir / f"{label}.db"
    shutil.copy(database, copy)
    store = open_store(f"sqlite:///{copy}")
    try:
        with store.engine.connect() as conn:
            ids = sorted(conn.execute(sa.select(entries_table.c.id)).scalars().all())
            newest = conn.execute(sa.select(sa.func.max(entries_table.c.published_at))).scalar()
        picked = random.Random(seed).sample(ids, min(count, len(ids)))
        loaded = store.get_entries(picked)
        originals = [loaded[i] for i in picked]
        feed = store.add_feed("https://late.example/feed", title="Late Outlet")
        copies = late_copies(originals, feed, None if late else newest)
        store.save_entries(feed.id, copies)
        writer = SqlStoryStore(store.engine)  # a restarted writer: the last four days in memory
        started = time.perf_counter()
        assign_pending(store, writer, StoryAssigner(writer))
        seconds = time.perf_counter() - started
        placed = writer.stories_of([c.id for c in copies])
        original = writer.stories_of(picked)
        joined = sum(1 for c, o in zip(copies, originals, strict=True) if placed.get(c.id) == original.get(o.id))
        return seconds, joined
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a data dir bench/stories_speed.py built")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    database = args.data_dir / "data" / "newsdesk.db"
    if not database.exists():
        database = args.data_dir / "newsdesk.db"
    if not database.exists():
        print(f"no store under {args.data_dir}: build one with bench/stories_speed.py --data-dir DIR --no-web")
        return 0
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-late-") as temporary:
        workdir = Path(temporary)
        base_s, base_joined = run_once(database, workdir, "baseline", args.count, args.seed, late=False)
        late_s, late_joined = run_once(database, workdir, "late", args.count, args.seed, late=True)
    print(f"{args.count} copies of stored entries, assigned by a restarted writer:")
    print(
        f"  at the newest time (baseline): {base_s:.2f}s ({args.count / base_s:.0f}/s), {base_joined} in their original's story"
    )
    print(
        f"  at their own dates (late):     {late_s:.2f}s ({args.count / late_s:.0f}/s), {late_joined} in their original's story"
    )
    print(f"  late / baseline time: {late_s / base_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
