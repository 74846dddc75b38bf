"""The query language parser: every syntax feature, and arbitrary strings never raising."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from index.search.compile import excluded_query, positive_query
from index.search.query import Term, parse_query

NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_query(text, now=NOW)


def test_words_are_anded_phrases_kept_whole() -> None:
    parsed = parse('dock strike "sea wall"')
    assert parsed.groups == ((Term("dock"),), (Term("strike"),), (Term("sea wall", phrase=True),))
    assert parsed.notices == ()


def test_or_joins_neighbours_and_pipe_works_too() -> None:
    assert parse("ferry OR boat harbour").groups == ((Term("ferry"), Term("boat")), (Term("harbour"),))
    assert parse("ferry | boat").groups == ((Term("ferry"), Term("boat")),)
    # Lower-case "or" is a word (Google treats it so too).
    assert len(parse("ferry or boat").groups) == 3


def test_excluded_words_and_phrases() -> None:
    parsed = parse('harbour -mackerel -"sea wall"')
    assert parsed.groups == ((Term("harbour"),),)
    assert parsed.excluded == (Term("mackerel"), Term("sea wall", phrase=True))
    assert excluded_query(parsed) is not None


def test_not_excludes_and_and_is_a_no_op() -> None:
    # "trump NOT iran" once ran as "trump iran" (NOT dropped as a common word): the opposite of what was meant.
    assert parse("harbour NOT mackerel") == parse("harbour -mackerel")
    assert parse('harbour NOT "sea wall"').excluded == (Term("sea wall", phrase=True),)
    assert parse("harbour AND mackerel") == parse("harbour mackerel")
    assert any("NOT with nothing after" in n for n in parse("harbour NOT").notices)
    # Lower-case "not" is a word, like "or".
    assert len(parse("harbour not mackerel").groups) == 3


def test_fields_title_author_source_tag_lang() -> None:
    parsed = parse('title:election author:"Priya Raman" source:bbc site:bbc.co.uk tag:Politics lang:French')
    assert parsed.groups == ((Term("election", field="title"),), (Term("Priya Raman", phrase=True, field="author"),))
    assert parsed.sources == ("bbc", "bbc.co.uk")
    assert parsed.tags == ("politics",)
    assert parsed.languages == ("fr",)


def test_absolute_dates() -> None:
    parsed = parse("after:2019-12-01 before:2020-01")
    assert parsed.after == datetime(2019, 12, 1, tzinfo=UTC)
    assert parsed.before == datetime(2020, 2, 1, tzinfo=UTC)  # the whole of January counts
    day = parse("date:2024-05-08")
    assert (day.after, day.before) == (datetime(2024, 5, 8, tzinfo=UTC), datetime(2024, 5, 9, tzinfo=UTC))


def test_relative_dates() -> None:
    assert parse('date:"past week"').after == datetime(2024, 5, 13, 12, 0, tzinfo=UTC)
    assert parse("date:today").after == datetime(2024, 5, 20, tzinfo=UTC)
    assert parse('after:"last 3 days"').after == datetime(2024, 5, 17, 12, 0, tzinfo=UTC)


def test_fuzzy_and_prefix() -> None:
    assert parse("elektion~").groups == ((Term("elektion", fuzzy=1),),)
    assert parse("elektion~2").groups == ((Term("elektion", fuzzy=2),),)
    assert parse("lighthous*").groups == ((Term("lighthous", prefix=True),),)
    assert parse("title:elektion~").groups == ((Term("elektion", fuzzy=1, field="title"),),)
    assert parse("title:lighthous*").groups == ((Term("lighthous", prefix=True, field="title"),),)


def test_unknown_field_is_searched_as_words_with_a_notice() -> None:
    parsed = parse("colour:blue harbour")
    assert [t.text for g in parsed.groups for t in g] == ["colour", "blue", "harbour"]
    assert any("colour:" in n for n in parsed.notices)


def test_malformed_parts_are_ignored_with_a_notice() -> None:
    cases = {
        '"unclosed phrase': "not closed",
        "OR harbour": "OR with nothing before",
        "harbour OR": "OR with nothing after",
        "after:yesterdayish harbour": "dates look like",
        "(harbour OR ferry)": "parentheses",
        "lang:klingon-ish harbour": "two-letter codes",
        "-source:bbc harbour": "only words and phrases can be excluded",
        "title: harbour": "searched",
    }
    for text, fragment in cases.items():
        parsed = parse(text)
        assert any(fragment in n for n in parsed.notices), (text, parsed.notices)
        assert not parsed.is_empty or text.startswith("-source")


def test_empty_date_range_is_reported() -> None:
    assert any("empty" in n for n in parse("after:2024-05-10 before:2024-05-01").notices)


def test_as_any_turns_every_group_into_one() -> None:
    assert parse("mackerel zebra").as_any().groups == ((Term("mackerel"), Term("zebra")),)


def test_stop_words_alone_build_no_query() -> None:
    query, dropped = positive_query(parse("the of"))
    assert query is None and dropped == ["the", "of"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.text(alphabet='ab:"-~*|()OR tg', max_size=40))
def test_any_string_parses_and_compiles(text: str) -> None:
    parsed = parse_query(text, now=NOW)
    positive_query(parsed)
    excluded_query(parsed)
    for notice in parsed.notices:
        assert isinstance(notice, str) and notice
