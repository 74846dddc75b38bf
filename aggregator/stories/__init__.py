"""Stories: every article belongs to one, assigned online as articles arrive.

`cluster` holds the algorithm, `features` the text features, `state` the records a store keeps
and the protocol it implements. Pure: no I/O here; the store and indexer call in.
"""

from __future__ import annotations

from .cluster import Assignment, StoryAssigner, StoryMatch, StorySettings
from .features import FeatureSettings, StoryArticle
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
    "story_id_for",
]
