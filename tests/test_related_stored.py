"""Candidates' related-coverage terms stored in the index: the same vectors as analyzing their leads,
no store read for them, and indexes written before the field keep working until `reindex` fills it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from whoosh import index as whoosh_index

from aggregator.store import Store, open_store
from index.indexer import STATE_FILE, Indexer, IndexLocation
from index.related.finder import RelatedFinder
from index.related.rank import RelatedSettings, term_counts, title_key, weighted_counts
from index.related.stored import LEAD_CHARS, read_terms, stored_terms
from index.related.tokens import TermMemo
from index.schema import SCHEMA_VERSION, build_schema, entry_document, news_analyzer
from index.search.engine import IndexReader
from tests.test_related import CORPUS, NOW, make_entry, save

LONG_LEAD = " ".join(f"Délégués {n} votèrent, l'accord n'était pas signé; U.S. officials' talks." for n in range(40))


@pytest.mark.parametrize(
    ("title", "lead"),
    [
        ("Protesters storm US embassy compound in Baghdad", "Protesters storm the security post at the US embassy"),
        ("Zürich's café owners protest — again", ""),
        ("", "A lead with no title at all"),
        ("U.S. rates: the Fed's 0.25 point rise", LONG_LEAD),
        ("The and of", "a an the"),  # stop words only: no terms at all
    ],
)
def test_stored_terms_give_the_counts_analyzing_the_text_gives(title: str, lead: str) -> None:
    memo = TermMemo(news_analyzer())
    settings = RelatedSettings()
    value = stored_terms(memo.terms, title, lead)
    assert value is not None
    terms = read_terms(value, settings.body_chars)
    assert terms is not None
    expected = term_counts(memo.terms, title, lead, settings)
    # Equal counts in the same order: weights are summed in dict order, so the cosines agree to the last bit.
    assert list(weighted_counts(terms.title, terms.lead, settings).items()) == list(expected.items())
    assert terms.title_key == title_key(title)
    assert read_terms(value, settings.body_chars + 1) is None  # stored for another lead length: not used
    assert read_terms(None, settings.body_chars) is None  # a document indexed before the field existed


def test_the_lead_is_cut_where_the_finder_cuts_it() -> None:
    assert RelatedSettings().body_chars == LEAD_CHARS
    memo = TermMemo(news_analyzer())
    value = stored_terms(memo.terms, "t", "word " * 500)
    terms = read_terms(value, LEAD_CHARS)
    assert terms is not None and len(terms.lead) == LEAD_CHARS // len("word ")


# ---------------------------------------------------------------------------- on a real store and index


@dataclass
class CountingLeads:
    """The store, counting the entries whose leads the finder reads from it."""

    store: Store
    asked: list[str] = field(default_factory=list)

    def entry_leads(self, entry_ids: Sequence[str], chars: int) -> dict[str, tuple[str, str]]:
        self.asked.extend(entry_ids)
        return self.store.entry_leads(entry_ids, chars)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def publish_old_index(root: Path, store: Store) -> None:
    """Publish an index as Newsdesk wrote it before ``related_terms``: a schema without it, documents without it."""
    location = IndexLocation(root)
    building = location.new_generation()
    schema = build_schema()
    schema.remove("related_terms")
    ix = whoosh_index.create_in(str(building), schema)
    writer = ix.writer()
    for entry in store.iter_entries():
        document = entry_document(entry)
        del document["related_terms"]
        writer.add_document(**document)
    writer.commit()
    (building / STATE_FILE).write_text(json.dumps({"seq": store.last_seq(), "schema": SCHEMA_VERSION}))
    location.publish(building)


def answers(store: Store, root: Path) -> tuple[dict[str, list[tuple[str, float, float]]], list[str]]:
    """Return every stored entry's related coverage (id, score, similarity) in a fresh finder, and the leads it read."""
    lookup = CountingLeads(store)
    reader = IndexReader(root)
    try:
        finder = RelatedFinder(reader, lookup)  # type: ignore[arg-type]
        found = {
            entry.id: [(item.entry.id, item.score, item.similarity) for item in finder.for_entry(entry, now=NOW)]
            for entry in store.iter_entries()
        }
    finally:
        reader.close()
    return found, lookup.asked


def stored_values(root: Path) -> dict[str, Any]:
    """Return entry id -> its document's related_terms (None without one) in the live index."""
    path = IndexLocation(root).current_dir()
    assert path is not None
    with whoosh_index.open_dir(str(path)).searcher() as searcher:
        return {fields["id"]: fields.get("related_terms") for fields in searcher.all_stored_fields()}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    opened.migrate()
    save(opened, CORPUS)
    yield opened
    opened.close()


def test_finder_reads_candidates_terms_from_the_index_not_the_store(store: Store, tmp_path: Path) -> None:
    Indexer(tmp_path / "new", store).catch_up()
    publish_old_index(tmp_path / "old", store)
    assert all(isinstance(value, str) for value in stored_values(tmp_path / "new").values())
    assert set(stored_values(tmp_path / "old").values()) == {None}
    new, new_leads = answers(store, tmp_path / "new")
    old, old_leads = answers(store, tmp_path / "old")
    assert new == old  # the same items, scores and similarities, to the last bit
    assert new["reuters-embassy"]  # and there is something to compare
    assert new_leads == []  # every candidate's terms came with its stored fields
    assert old_leads  # an old index's candidates are read from the store, as before


def test_an_old_index_takes_the_field_for_new_documents_and_reindex_fills_it(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "index"
    publish_old_index(root, store)
    late = make_entry(
        "ap",
        "embassy",
        "Embassy in Baghdad stormed by militia supporters",
        "Militia supporters stormed the US embassy in Baghdad after air strikes, torching a security post",
        hours=3,
    )
    save(store, [late])
    Indexer(root, store).catch_up()  # the writer of this version on an index made before the field
    values = stored_values(root)
    assert isinstance(values[late.id], str)
    assert {values[entry.id] for entry in CORPUS} == {None}
    mixed, mixed_leads = answers(store, root)
    assert late.id not in mixed_leads and set(mixed_leads) <= {entry.id for entry in CORPUS}
    assert late.id in [item for item, _, _ in mixed["reuters-embassy"]]
    Indexer(root, store).rebuild()  # what `newsdesk reindex` runs
    assert all(isinstance(value, str) for value in stored_values(root).values())
    rebuilt, rebuilt_leads = answers(store, root)
    assert rebuilt == mixed and rebuilt_leads == []
