"""How close one article is to another of its story: the rule that decides which members related coverage lists.

A story is joined through its centroid, so it can hold articles that are each close to the story
but not to one another: a developing event's sequel a day or two later joins through the names
they share, and a reader of the first report is then shown the sequel's coverage as if it were
the same report. Related coverage therefore also asks how close each member is to the article
itself: the cosine of their two vectors, weighed down by the time between them over days, not
hours (coverage of one event spreads over a day or so; a second event's shows up later):

    closeness = cosine / (1 + (hours apart / time_scale)^2)

Flat for the first hours, half at ``time_scale`` hours, a fifth at twice that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

__all__ = ["closeness"]


def closeness(
    vector: Mapping[str, float],
    published_at: datetime,
    other: Mapping[str, float],
    other_published_at: datetime,
    time_scale_hours: float,
) -> float:
    """Return the closeness of two articles: the cosine of their unit vectors, weighed down by the time between them."""
    if len(other) < len(vector):
        vector, other = other, vector
    dot = math.fsum(weight * other[term] for term, weight in vector.items() if term in other)
    if dot <= 0.0:
        return 0.0
    hours = abs((published_at - other_published_at).total_seconds()) / 3600.0
    return dot / (1.0 + (hours / time_scale_hours) ** 2)
