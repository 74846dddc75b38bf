"""The story tables: a migration step of its own, stacked on the entry schema (see ``tables``).

Schema step "stories" (adds tables only, so `create_all` makes them on an existing database):

- ``stories``: one row per story (merged ones included), its assigner state as JSON plus the
  columns pages rank and filter by;
- ``story_aliases``: a merged story's id -> the story it lives on in (always the final one);
- ``story_members``: entry id -> its story (rewritten to the survivor when stories merge);
- ``story_terms``: document frequencies the assigner learned (term -> articles containing it);
- ``entry_meanings``: each assigned entry's meaning (`aggregator.stories.meaning`) and term weights, written
  by the writer so that related coverage reads a pool's instead of working each out on every web node.

The change-log sequence the assignment has reached (on a scaled-out PostgreSQL store: the change-log
position), the story version readers load changes by and the number of counted articles are kept in
``meta`` (keys below), written in the same transaction as a batch's stories.
"""

from __future__ import annotations

import sqlalchemy as sa

from .tables import UTCDateTime, metadata

#: meta key: the change-log sequence story assignment has consumed.
STORIES_SEQ_KEY = "stories_seq"
#: meta key: the change-log position ("txid:seq") story assignment has consumed on a scaled-out store.
STORIES_POSITION_KEY = "stories_position"
#: meta key: the number of the last batch saved; rows carry the version that last wrote them.
STORIES_VERSION_KEY = "stories_version"
#: meta key: articles whose terms are counted in story_terms.
STORIES_DOCUMENTS_KEY = "stories_documents"

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")

stories_table = sa.Table(
    "stories",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("outlet_count", sa.Integer, nullable=False),
    sa.Column("merged_into", sa.String(32)),
    # StoryState.to_json(): centroid and outlets, what the assigner needs between batches.
    sa.Column("state", sa.Text, nullable=False),
    # The story version of the batch that last wrote it: readers load what changed since.
    sa.Column("updated_seq", _SEQ, nullable=False),
    sa.Index("ix_stories_rank", "merged_into", "outlet_count", "last_seen"),
    sa.Index("ix_stories_last_seen", "last_seen"),
    sa.Index("ix_stories_updated", "updated_seq"),
    # The stories open around a day (a past article's window): the range is read in the index, without
    # the state of every standing story (ix_stories_rank alone walked them all: 40-80 ms at 29,000 stories).
    sa.Index("ix_stories_window", "merged_into", "last_seen", "first_seen"),
)

story_aliases_table = sa.Table(
    "story_aliases",
    metadata,
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("story_id", sa.String(32), nullable=False),
    sa.Column("seq", _SEQ, nullable=False),
    sa.Index("ix_story_aliases_story", "story_id"),
)

story_members_table = sa.Table(
    "story_members",
    metadata,
    sa.Column("entry_id", sa.String(64), primary_key=True),
    sa.Column("story_id", sa.String(32), nullable=False),
    sa.Column("seq", _SEQ, nullable=False),
    sa.Index("ix_story_members_story", "story_id"),
)

story_terms_table = sa.Table(
    "story_terms",
    metadata,
    sa.Column("term", sa.Text, primary_key=True),
    sa.Column("documents", sa.Integer, nullable=False),
)

entry_meanings_table = sa.Table(
    "entry_meanings",
    metadata,
    sa.Column("entry_id", sa.String(64), primary_key=True),
    # `meaning.meaning_key` of the text it was worked out from (and of the word vectors): a row whose
    # entry's words changed since, or written with other vectors, is not used.
    sa.Column("text_key", sa.LargeBinary(16), nullable=False),
    # `meaning.pack`: the unit vector in half precision.
    sa.Column("vector", sa.LargeBinary, nullable=False),
    # The entry's story-assignment term weights (`features.term_weights`) as compressed JSON, and the key of
    # what they were worked out from (title, text, language and the settings that weigh them).
    sa.Column("terms_key", sa.LargeBinary(16)),
    sa.Column("terms", sa.LargeBinary),
)
