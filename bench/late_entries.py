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

With --memory-cap N it also assigns the whole store again from its change log (which holds it outlet
by outlet: Reuters 1987, BBC 2004-05, then the UCI outlets one after another, so most of it arrives
late) twice, each in a process of its own on a copy: by a writer holding every story in memory (the
baseline), and by one holding at most N (`SqlStoryStore(memory_stories=N)`; the rest are read back by
the week). It prints both times, both processes' peak resident memory, and how many entries the
capped writer placed in the same story as the other.

    .venv/bin/python bench/late_entries.py --data-dir /work/wt/benchdata-storyspeed [--count 2000] [--memory-cap 10000]

Skips (exit 0) when the data dir holds no store.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import shutil
import subprocess
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


def reassign(database: Path, memory_stories: int, placements: Path) -> None:
    """Forget the stories of the store at ``database`` and assign them again with a writer holding at most
    ``memory_stories``; write entry id -> story id to ``placements`` and print the seconds and peak memory."""
    import sqlalchemy as sa

    from aggregator import tables_stories as t
    from aggregator.store import open_store
    from aggregator.store_stories import SqlStoryStore, assign_pending
    from aggregator.stories import StoryAssigner
    from aggregator.tables import entries_table, meta_table

    store = open_store(f"sqlite:///{database}")
    try:
        with store.engine.begin() as conn:
            for table in (t.stories_table, t.story_aliases_table, t.story_members_table, t.story_terms_table):
                conn.execute(sa.delete(table))
            keys = (t.STORIES_SEQ_KEY, t.STORIES_DOCUMENTS_KEY)
            conn.execute(sa.delete(meta_table).where(meta_table.c.key.in_(keys)))
        writer = SqlStoryStore(store.engine, memory_stories=memory_stories)
        started = time.perf_counter()
        assign_pending(store, writer, StoryAssigner(writer))
        seconds = time.perf_counter() - started
        with store.engine.connect() as conn:
            ids = sorted(conn.execute(sa.select(entries_table.c.id)).scalars().all())
        placements.write_text(json.dumps(writer.stories_of(ids)))
    finally:
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def capped_pass(database: Path, workdir: Path, cap: int) -> None:
    """Reassign the store uncapped and capped at ``cap``, each in a process of its own; print the comparison."""
    results = {}
    for label, limit in (("every story in memory", 10**9), (f"at most {cap:,} in memory", cap)):
        copy = workdir / f"reassign-{limit}.db"
        shutil.copy(database, copy)
        placements = workdir / f"placements-{limit}.json"
        out = subprocess.run(
            [sys.executable, __file__, "--reassign", str(copy), str(limit), str(placements)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[label] = (json.loads(out.strip().splitlines()[-1]), json.loads(placements.read_text()))
        copy.unlink()
    (base_label, (base, base_placed)), (cap_label, (capped, cap_placed)) = results.items()
    same = sum(1 for entry, story in base_placed.items() if cap_placed.get(entry) == story)
    print(f"the whole store assigned again from its change log ({len(base_placed):,} entries, outlet by outlet):")
    for label, figures in ((base_label, base), (cap_label, capped)):
        print(f"  {label:28} {figures['seconds']:.0f}s, peak resident memory {figures['peak_mib']:.0f} MiB")
    print(
        f"  time capped / every story: {capped['seconds'] / base['seconds']:.2f}; "
        f"{same:,} of {len(base_placed):,} entries in the same story"
    )


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--reassign":  # a child of capped_pass
        reassign(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a data dir bench/stories_speed.py built")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--memory-cap", type=int, default=0, metavar="N", help="also reassign the store capped at N")
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
        count = args.count
        print(f"{count} copies of stored entries, assigned by a restarted writer:")
        print(
            f"  at the newest time (baseline): {base_s:.2f}s ({count / base_s:.0f}/s), {base_joined} in their original's story"
        )
        print(
            f"  at their own dates (late):     {late_s:.2f}s ({count / late_s:.0f}/s), {late_joined} in their original's story"
        )
        print(f"  late / baseline time: {late_s / base_s:.2f}", flush=True)
        if args.memory_cap:
            capped_pass(database, workdir, args.memory_cap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
