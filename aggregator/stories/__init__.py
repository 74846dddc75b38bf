"""Stories: every article belongs to one, assigned online as articles arrive.

`cluster` holds the algorithm (`StoryAssigner`), `features` the text features, `state` the records
a store keeps and the `StoryStore` protocol it implements (`MemoryStoryStore` is the reference).
Pure: no I/O here; the store implements the protocol and one writer calls in.

Integration, in short: a single writer (the process that consumes the store's change log, in
change-log order) builds a `StoryArticle` per new entry (`article_from_entry`: title, body or summary, published time,
outlet = site host or feed key, language) and calls `StoryAssigner.assign_many` per batch; the
store persists the resulting `StoryChanges` in the same transaction as the batch's cursor, so the
stories are the same on every node and after a restart. Embeds ask `StoryAssigner.find` with an
article we do not store (read-only). Re-assigning an entry that already has a story is a no-op.
"""

from __future__ import annotations

from .cluster import Assignment, StoryAssigner, StoryMatch, StorySettings
from .features import FeatureSettings, StoryArticle, article_from_entry
from .state import MemoryStoryStore, StoryChanges, StoryState, StoryStore, story_id_for

__all__ = [
    "Assignment",
    "FeatureSettings",
    "MemoryStoryStore",
    "StoryArticle",
    "StoryAssigner",
    "StoryChanges",
    "StoryMatch",
    "StorySettings",
    "StoryState",
    "StoryStore",
    "article_from_entry",
    "story_id_for",
]
