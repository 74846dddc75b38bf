"""Story assignment cost per entry as the store grows: does it stay flat, and where does it go?

    .venv/bin/python bench/assign_profile.py --data-dir DIR [--limit N] [--batch 1000] [--profile FILE]

Stores the corpus as `bench/stories_speed.py` does (Reuters and BBC full text, then the UCI headlines
outlet by outlet: N Reuters, N BBC and 8N headlines with --limit; no search index is built), or with
--time-order hour by hour in publication order, as a live install receives news (outlet by outlet,
every headline is late and the stories of all five months are open at once), or reopens DIR when it
already holds entries. Then it clears every story (tables and cursor) and assigns
stories to the whole change log afresh through `Services.assign_stories`, one batch at a time, timing
each batch in CPU seconds of this process (the machine is shared: wall time would measure the
neighbours). Printed: ms of CPU per entry by tenth of the stream, so growth with size shows, next to
the first tenth (the baseline of the same run), with --gc-stats the cyclic garbage collector's share,
and with --profile a cProfile. NEWSDESK_BENCH_TREE=CHECKOUT runs this script on another checkout's code
(`bench/baseline.py`), e.g. main's beside this branch's on a copy of the store.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.baseline import use_tree  # noqa: E402

use_tree()  # NEWSDESK_BENCH_TREE=CHECKOUT measures that checkout's code with this script (e.g. main's)


def clear_stories(services: Any) -> None:
    """Remove every story, member, alias, term count and story cursor, so assignment starts again."""
    import sqlalchemy as sa

    from aggregator.tables import meta_table
    from aggregator.tables_stories import (
        STORIES_DOCUMENTS_KEY,
        STORIES_POSITION_KEY,
        STORIES_SEQ_KEY,
        STORIES_VERSION_KEY,
        stories_table,
        story_aliases_table,
        story_members_table,
        story_terms_table,
    )

    keys = [STORIES_DOCUMENTS_KEY, STORIES_POSITION_KEY, STORIES_SEQ_KEY, STORIES_VERSION_KEY]
    with services.store.engine.begin() as conn:
        for table in (stories_table, story_aliases_table, story_members_table, story_terms_table):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(meta_table).where(meta_table.c.key.in_(keys)))


def main() -> int:
    """Build or reopen the store, assign stories batch by batch, print CPU per entry by tenth; return 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="Where the store is built (kept).")
    parser.add_argument("--limit", type=int, default=None, help="At most N Reuters and N BBC articles, 8N headlines.")
    parser.add_argument("--batch", type=int, default=1000, help="Entries per assignment batch (default 1000).")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="Write a cProfile of the whole assignment here (its overhead inflates the times).",
    )
    parser.add_argument(
        "--time-order",
        action="store_true",
        help="Store the corpus in publication order (as a live install receives news) instead of outlet by outlet.",
    )
    parser.add_argument("--store-only", action="store_true", help="Build the store and stop (copy it for A/B runs).")
    parser.add_argument(
        "--dump", type=Path, default=None, help="Write 'entry id TAB story id' lines here (to compare)."
    )
    parser.add_argument(
        "--gc-stats",
        action="store_true",
        help="Also print the cyclic garbage collector's collections and CPU seconds, by generation.",
    )
    args = parser.parse_args()

    from aggregator.config import config_from_dict
    from web.services import build_services

    stories_speed = _stories_speed()
    if not (stories_speed.corpus.REUTERS.is_dir() and stories_speed.corpus.UCI.exists()):
        print("../shared/corpus is not present: nothing to measure", file=sys.stderr)
        return 0
    data_dir = args.data_dir.resolve() / "data"
    services = build_services(config_from_dict({"data_dir": str(data_dir)}, label="bench"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; data dir {data_dir}", flush=True)
    if not services.store.count_entries():
        if args.time_order:
            store_in_time_order(services, stories_speed, args.limit)
        else:
            stories_speed.store_corpus(services, args.limit)
    total = services.store.count_entries()
    if args.store_only:
        services.close()
        return 0
    clear_stories(services)
    services.close()
    # A fresh process view, as a writer that starts on this store has.
    services = build_services(services.config)
    profiler = cProfile.Profile() if args.profile else None
    collector = CollectorTimes() if args.gc_stats else None
    per_batch: list[tuple[int, float]] = []
    done = 0
    cpu_all = time.process_time()
    while True:
        if profiler is not None:
            profiler.enable()
        cpu = time.process_time()
        assigned = _assign_one_batch(services, args.batch)
        spent = time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
        if not assigned:
            break
        per_batch.append((assigned, spent))
        done += assigned
    cpu_all = time.process_time() - cpu_all
    if collector is not None:
        collector.stop()
    stats = services.stories.stats()
    if args.dump is not None:
        _dump_members(services, args.dump)
    services.close()
    print(f"assigned {done} of {total} entries in {cpu_all:.1f}s CPU; stories: {stats}")
    if collector is not None:
        print(collector.summary())
    _print_tenths(per_batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load average {os.getloadavg()[0]:.1f}; peak resident memory {peak:.0f} MiB")
    if profiler is not None and args.profile is not None:
        profiler.dump_stats(str(args.profile))
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)
    return 0


class CollectorTimes:
    """Counts the cyclic garbage collector's collections and their CPU seconds by generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += time.process_time() - self._started

    def stop(self) -> None:
        """Stop counting."""
        gc.callbacks.remove(self._callback)

    def summary(self) -> str:
        """Return one line: collections and CPU seconds of each generation, and the total."""
        parts = [f"gen{g} {self.collections[g]} in {self.seconds[g]:.2f}s" for g in range(3)]
        return f"garbage collector: {', '.join(parts)}; {sum(self.seconds):.2f}s CPU in all"


def store_in_time_order(services: Any, stories_speed: Any, limit: int | None) -> None:
    """Store the corpus as polls of a live install would: every outlet's items of each hour, hour by hour."""
    from collections import defaultdict

    store = services.store
    started = time.perf_counter()
    outlets: dict[str, tuple[Any, str, str]] = {}
    by_hour: dict[datetime, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for title, site, items in stories_speed.corpus.corpus_feeds(limit):
        outlets[site] = (store.add_feed(site + "feed.xml", title=title), title, site)
        for item in items:
            by_hour[item.published.replace(minute=0, second=0, microsecond=0)][site].append(item)
    stored = 0
    for hour in sorted(by_hour):
        for site, items in by_hour[hour].items():
            feed, title, _ = outlets[site]
            stored += stories_speed.save_items(store, feed, title, site, items)
    seconds = time.perf_counter() - started
    print(f"corpus: {stored} entries stored hour by hour in {seconds:.0f}s", flush=True)


def _assign_one_batch(services: Any, batch: int) -> int:
    from aggregator.store_stories import assign_pending

    # One batch: a stop event set after the first batch ends the loop there.
    class _OnceEvent:
        def __init__(self) -> None:
            self.calls = 0

        def is_set(self) -> bool:
            self.calls += 1
            return self.calls > 1

    return assign_pending(
        services.store, services.stories, services.story_assigner, batch_size=batch, stop=_OnceEvent()
    )


def _dump_members(services: Any, path: Path) -> None:
    """Write every entry's story (aliases followed), sorted, so two runs' assignments can be diffed."""
    import sqlalchemy as sa

    from aggregator.tables_stories import story_members_table

    m = story_members_table.c
    with services.store.engine.connect() as conn:
        rows = sorted(conn.execute(sa.select(m.entry_id, m.story_id)).all())
    path.write_text("".join(f"{entry_id}\t{story_id}\n" for entry_id, story_id in rows))


def _print_tenths(per_batch: list[tuple[int, float]]) -> None:
    """Print ms of CPU per entry for each tenth of the stream, and its ratio to the first tenth."""
    count = len(per_batch)
    if not count:
        return
    print(f"{'tenth':>6}{'entries so far':>16}{'ms CPU/entry':>14}{'x first':>9}")
    first = None
    so_far = 0
    for tenth in range(10):
        part = per_batch[tenth * count // 10 : (tenth + 1) * count // 10]
        if not part:
            continue
        entries = sum(n for n, _ in part)
        seconds = sum(s for _, s in part)
        so_far += entries
        per_entry = seconds * 1000 / entries
        first = first or per_entry
        print(f"{tenth + 1:>6}{so_far:>16}{per_entry:>14.2f}{per_entry / first:>9.2f}")


def _stories_speed() -> Any:
    import importlib

    return importlib.import_module("bench.stories_speed")


if __name__ == "__main__":
    sys.exit(main())
