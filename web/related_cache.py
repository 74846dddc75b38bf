"""Whole related-coverage answers kept per data version, so an article asked again costs a lookup.

An embed on a busy page asks about the same article on every view. The finder caches its own
part per index version, but the story-first part (the article's story, its members' rows, the
entries shown) was read again each time: about 6 ms of CPU for an answer already given. An answer
depends on the index, the stored entries and the stories, which is what the front page is built
from too (`web.versions.data_version`: index version, change-log position, story cursor); feed titles change
no log, so, as for the front page, an answer is also kept at most ``seconds``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from aggregator.kept import Kept
from aggregator.models import Entry
from index.related.rank import ArticleQuery

#: Answers kept (per process).
ANSWERS = 4096
#: Seconds an answer is served again while nothing it was computed from changed.
ANSWER_SECONDS = 30.0

Items = list[dict[str, Any]]

__all__ = ["ANSWERS", "ANSWER_SECONDS", "AnswerCache", "Kept"]


class AnswerCache(Kept):
    """Related answers by (data version, article, limit)."""

    def __init__(self, size: int = ANSWERS, seconds: float = ANSWER_SECONDS) -> None:
        super().__init__(size, seconds)

    def items(
        self,
        version: Hashable,
        article: ArticleQuery,
        entry: Entry | None,
        limit: int,
        compute: Callable[[ArticleQuery, Entry | None, int], Items],
    ) -> Items:
        """Return the answer for this article, computed by ``compute`` unless one for the same data is kept."""
        if entry is None and article.published_at is None:
            # An undated article is placed around "now": its answer moves with the clock, never kept.
            return compute(article, entry, limit)
        own = None if entry is None else (entry.id, entry.source.title, entry.source.site_url, entry.url)
        # Each caller gets its own copies of the items (the kept ones are never handed out).
        kept: Items = self.get((version, article, own, limit), lambda: _copied(compute(article, entry, limit)))
        return _copied(kept)


def _copied(items: Items) -> Items:
    return [dict(item) for item in items]
