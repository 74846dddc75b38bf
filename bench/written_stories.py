"""Stories and related coverage on articles written for this check, nobody tuned on (bench/written_stories.json).

Two events, each covered by three outlets in their own words hours to a day apart, beside news of the
same island, the same company and another data breach the same week: what the acceptance of stories
asks, on text the constants never saw. For each kind of feed (lead paragraphs, first sentences,
headlines) it prints the stories the writer formed, then every related-coverage answer: by entry with
everything stored, by title+text with each covered article withheld in turn (an embedding page's
article), and for the stories never stored (anything shown is false-related).

    .venv/bin/python bench/written_stories.py [--text full|mixed|summary|headline] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from related_quality import RelatedApi, embed_params, prepare
from story_data import BACKGROUND_OUTLET, TEXT_KINDS, Item, as_fed, background

DATA = Path(__file__).resolve().parent / "written_stories.json"
BASE = datetime(2026, 6, 5, 17, 40, tzinfo=UTC)


def items_of(rows: Sequence[dict[str, object]], text: str) -> list[Item]:
    """Return the rows as bench items, their text as a feed of kind ``text`` carries it (`story_data.as_fed`)."""
    items = []
    for row in rows:
        outlet = str(row["outlet"])
        host = outlet.lower().replace(" ", "") + ".example"
        items.append(
            Item(
                id=str(row["id"]),
                title=str(row["title"]),
                text=str(row["text"]),
                outlet=outlet,
                story=str(row["story"]),
                published_at=BASE + timedelta(hours=float(str(row["hours"]))),
                url=f"https://{host}/{row['id']}",
                host=host,
            )
        )
    return as_fed(items, text, seed=1)


class Tally:
    """Counts over the answers of one kind of ask."""

    def __init__(self) -> None:
        self.asks = 0
        self.wanted = 0
        self.found = 0
        self.wrong = 0
        self.empty = 0
        self.alone = 0
        self.alone_shown = 0

    def add(self, item: Item, shown: Sequence[Item], others: set[str]) -> str:
        """Count one answer; return it as a line."""
        right = {s.outlet for s in shown if s.story == item.story} & others
        wrong = [s for s in shown if s.story != item.story]
        self.asks += 1
        self.wanted += len(others)
        self.found += len(right)
        self.wrong += len(wrong)
        self.empty += not shown and bool(others)
        if not others:
            self.alone += 1
            self.alone_shown += bool(shown)
        listed = ", ".join(f"{s.outlet}{'' if s.story == item.story else ' [' + s.story + ']'}" for s in shown)
        return f"{len(right)}/{len(others)} of its other outlets; shown: {listed or '(nothing)'}"

    def line(self, label: str) -> str:
        """Return the totals as one line."""
        share = self.found / self.wanted if self.wanted else float("nan")
        return (
            f"  {label:<12} other outlets shown {self.found}/{self.wanted} ({share:.0%}), wrong items {self.wrong}, "
            f"empty answers {self.empty} of {self.asks - self.alone}"
            + (f"; of {self.alone} no other outlet covered, {self.alone_shown} showed something" if self.alone else "")
        )


def run(text: str, work: Path, others: int = 0) -> None:
    """Ingest the written articles as fed with ``text`` (with ``others`` BBC News articles dated over the same
    days, never asked about: a store holding other news), ask everything, print the answers."""
    data = json.loads(DATA.read_text("utf-8"))
    items = items_of(data["articles"], text)
    absent = items_of(data["absent"], text)
    outlets: dict[str, set[str]] = defaultdict(set)
    for item in items:
        outlets[item.story].add(item.outlet)
    covered = [item for item in items if len(outlets[item.story]) > 1]
    extra = background(items, others, seed=1) if others else []
    stored = [*items, *extra]
    print(f"\n== feeds carry: {text}" + (f", among {len(extra)} other articles" if extra else ""))
    by_entry, by_text, probes = Tally(), Tally(), Tally()
    # Everything stored: the stories formed and the answers by entry.
    ids = prepare(stored, work / "all", {"written": text})
    api = RelatedApi(work / "all")
    by_id = {ids[item.id]: item for item in stored}
    formed: dict[str | None, list[str]] = defaultdict(list)
    for entry_id, story_id in api.stories_of(list(by_id)).items():
        formed[story_id].append(f"{by_id[entry_id].story}/{by_id[entry_id].outlet}")
    print("  stories formed:")
    for members in sorted(formed.values(), key=lambda m: (-len(m), m)):
        written = sorted(m for m in members if not m.endswith(BACKGROUND_OUTLET))
        if written:
            more = len(members) - len(written)
            print(f"    {'; '.join(written)}" + (f" (and {more} other articles)" if more else ""))
    # Every stored article is asked about: one no other outlet covered should show nothing of another story.
    for item in items:
        shown = [by_id[i] for i in api.ask({"entry": ids[item.id]})]
        print(
            f"  by entry    {item.story}/{item.outlet}: {by_entry.add(item, shown, outlets[item.story] - {item.outlet})}"
        )
    for probe in absent:
        shown = [by_id[i] for i in api.ask(embed_params(probe))]
        print(f"  absent      {probe.title[:60]}: shown {', '.join(s.outlet for s in shown) or '(nothing)'}")
        probes.add(probe, shown, set())
    # Each covered article withheld in turn and asked about by title+text.
    for item in covered:
        kept = [other for other in stored if other.id != item.id]
        place = work / f"without-{item.id}"
        ids = prepare(kept, place, {"written": text, "without": item.id})
        api = RelatedApi(place)
        by_id = {ids[other.id]: other for other in kept}
        shown = [by_id[i] for i in api.ask(embed_params(item))]
        line = by_text.add(item, shown, outlets[item.story] - {item.outlet})
        print(f"  title+text  {item.story}/{item.outlet}: {line}")
    print(by_entry.line("by entry"))
    print(by_text.line("title+text"))
    print(f"  {'absent':<12} {probes.alone_shown} of {probes.alone} showed something (false-related)")


def main() -> int:
    """Run the check for the chosen kinds of feed; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", choices=TEXT_KINDS, action="append")
    parser.add_argument(
        "--background", type=int, default=0, help="also store this many BBC News articles over the same days"
    )
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/newsdesk-bench-written"))
    args = parser.parse_args()
    for text in args.text or ["full", "summary", "headline"]:
        work = args.work_dir / text
        shutil.rmtree(work, ignore_errors=True)
        run(text, work, args.background)
    return 0


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    raise SystemExit(main())
