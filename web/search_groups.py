"""Search results grouped by story on the HTML page: the hits of one story sit together under its first.

The near-duplicate collapse (index.search) already folds wire copies into one hit; this groups what
is left by story, so the other outlets' takes on the same event follow the best-ranked one, which
links the story's full coverage. Only the order on the page changes: every hit stays a result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from index.search.engine import SearchHit


@dataclass(frozen=True)
class StoryHit:
    """One search hit as the results page shows it, with its place in its story's group."""

    #: The hit itself.
    hit: SearchHit
    #: The story it belongs to; None when it has none.
    story_id: str | None
    #: For the first hit of a story on the page: how many more hits of that story follow it; else 0.
    story_others: int
    #: True for a hit listed under an earlier (better-ranked) hit of its story.
    in_group: bool
    #: For the first hit of a story shown as a story: its distinct outlets (links "Full coverage"); else 0.
    story_outlets: int


def group_by_story(
    hits: Sequence[SearchHit], story_ids: Mapping[str, str], outlets: Mapping[str, int], min_outlets: int
) -> list[StoryHit]:
    """Return the hits in rank order of each story's best hit, a story's other hits right after it."""
    groups: dict[str, list[SearchHit]] = {}
    order: list[tuple[str | None, list[SearchHit]]] = []
    for hit in hits:
        story_id = story_ids.get(hit.entry.id)
        if story_id is None:
            order.append((None, [hit]))
        elif story_id in groups:
            groups[story_id].append(hit)
        else:
            groups[story_id] = [hit]
            order.append((story_id, groups[story_id]))
    grouped: list[StoryHit] = []
    for story_id, members in order:
        count = outlets.get(story_id, 0) if story_id is not None else 0
        shown = count if count >= min_outlets else 0
        grouped.append(StoryHit(members[0], story_id, len(members) - 1, False, shown))
        grouped.extend(StoryHit(member, story_id, 0, True, 0) for member in members[1:])
    return grouped
