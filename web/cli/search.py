"""CLI: search and index maintenance."""

from __future__ import annotations

import html
import json
import logging
import re
from typing import TYPE_CHECKING

import click

from index.search.query import MAX_PER_PAGE, SORTS

from ..dates import date_bound
from ..terminal import terminal_safe
from .group import CliState, main

if TYPE_CHECKING:
    pass


@main.command()
@click.pass_obj
def reindex(state: CliState) -> None:
    """Rebuild the search index from the store beside the live one, then swap it in atomically."""
    from ..progress import CountingEntries, Progress
    from ..writer import assign_stories

    services = state.services
    assign_stories(services)  # only entries not assigned yet: a rebuild of the index keeps every story id
    with Progress("reindex", services.store.count_entries()) as progress:
        stats = services.indexer().rebuild(CountingEntries(services.store, progress))
    click.echo(f"reindexed {stats.upserts} entries (change seq {stats.seq})")
    # A store made before the writer kept what related coverage weighs of each article: kept now, once.
    filled = services.stories.fill_meanings(services.story_assigner.settings)
    if filled:
        click.echo(f"stored the meanings of {filled} older articles for related coverage")


@main.command("index")
@click.option("--optimize", is_flag=True, help="Also merge the index's segments into one.")
@click.pass_obj
def index_command(state: CliState, optimize: bool) -> None:
    """Apply pending store changes to the search index."""
    from ..writer import assign_stories

    services = state.services
    assign_stories(services)  # stories are kept in the store: assigned once, never re-clustered by a rebuild
    indexer = services.indexer()
    indexer.repair()  # a missing or damaged index is rebuilt from the store (and logged)
    stats = indexer.catch_up()
    click.echo(f"indexed {stats.upserts} upserts, {stats.deletes} deletes (change seq {stats.seq})")
    if optimize:
        before = indexer.segment_count()
        indexer.optimize()
        click.echo(f"merged {before} segments into {indexer.segment_count()}")


_JSON_C1 = {code: f"\\u{code:04x}" for code in range(0x80, 0xA0)}


def _plain(snippet: str) -> str:
    """Return a snippet for a terminal: marks shown as [brackets], entities decoded."""
    return html.unescape(re.sub(r"</?mark>", lambda m: "]" if m.group(0) == "</mark>" else "[", snippet))


@main.command("search")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="JSON output (the same shape as GET /api/v1/search).")
@click.option("--source", "sources", multiple=True, help="Only this outlet (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only entries with this tag (repeatable).")
@click.option("--lang", "languages", multiple=True, help="Only this language, e.g. en (repeatable).")
@click.option("--from", "date_from", default=None, help="Published on or after this date (YYYY-MM-DD).")
@click.option("--to", "date_to", default=None, help="Published on or before this date (YYYY-MM-DD).")
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True)
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--per-page", default=10, show_default=True, type=click.IntRange(1, MAX_PER_PAGE))
@click.option("--no-collapse", is_flag=True, help="List copies of a story from other outlets separately.")
@click.pass_obj
def search_command(
    state: CliState,
    query: str,
    as_json: bool,
    sources: tuple[str, ...],
    tags: tuple[str, ...],
    languages: tuple[str, ...],
    date_from: str | None,
    date_to: str | None,
    sort: str,
    page: int,
    per_page: int,
    no_collapse: bool,
) -> None:
    """Search the index (QUERY syntax: see `newsdesk search --help` or the search page's tips)."""
    from index.search.engine import Filters

    from ..api import SearchRequest, results_json, run_search
    from ..serialize import iso
    from ..services import Role

    services = state.services_as(Role.READER)
    problem = services.index_problem()  # a reader: it reports, the writer (`run`, `index`) rebuilds
    if problem is not None:
        logging.getLogger("newsdesk.index").warning(
            "search index %s: %s; `newsdesk index` rebuilds it from the store", state.config.index_dir, problem
        )
    wanted = SearchRequest(
        q=query,
        filters=Filters(
            sources=sources,
            tags=tags,
            languages=tuple(v.lower() for v in languages),
            date_from=date_bound(date_from, "--from", end=False),
            date_to=date_bound(date_to, "--to", end=True),
        ),
        sort=sort,
        page=page,
        per_page=per_page,
        collapse=not no_collapse,
    )
    results = run_search(wanted, services)
    if as_json:
        # JSON escapes C0 controls itself; C1 ones (U+0080-U+009F) it writes as they are.
        stories = services.stories.stories_of([hit.entry.id for hit in results.hits])
        click.echo(json.dumps(results_json(wanted, results, stories), ensure_ascii=False).translate(_JSON_C1))
        return

    def echo(line: str) -> None:
        # Titles, sources and snippets are what feeds wrote: no control character reaches the terminal.
        click.echo(terminal_safe(line))

    for notice in results.notices:
        echo(f"note: {notice}")
    if results.suggestion:
        echo(f"did you mean: {results.suggestion}")
    echo(f"{results.total} results ({results.total_groups} stories), page {results.page} of {results.pages}")
    for h in results.hits:
        echo(f"- {h.entry.title}  [{h.entry.source.title}, {iso(h.entry.published_at)}]\n  {h.entry.url}")
        echo(f"  {_plain(h.snippet)}")
        if h.duplicate_count:
            outlets = ", ".join(d.entry.source.title for d in h.duplicates)
            echo(f"  + {h.duplicate_count} more from other outlets: {outlets}")
    facets = results.facets
    for label, values in (("sources", facets.sources), ("tags", facets.tags), ("languages", facets.languages)):
        if values:
            echo(f"{label}: " + ", ".join(f"{v.value} ({v.count})" for v in values))


@main.command("stories")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per story per line.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200), help="Stories listed.")
@click.pass_obj
def stories_command(state: CliState, as_json: bool, limit: int) -> None:
    """List the top stories: covered by at least stories.min_outlets outlets, by breadth then recency."""
    from datetime import timedelta

    from ..serialize import iso
    from ..writer import assign_stories

    services = state.services
    assign_stories(services)
    options = state.config.stories
    rows, total = services.stories.top(
        min_outlets=options.min_outlets, limit=limit, window=timedelta(seconds=float(options.quiet_period))
    )
    for row in rows:
        ids = services.stories.member_ids(row.id)
        found = services.store.get_entries(ids)
        entries = [found[i] for i in ids if i in found]
        if not entries:
            continue
        outlets = list(dict.fromkeys(entry.source.title for entry in entries))
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": row.id,
                        "title": entries[0].title,
                        "outlet_count": len(outlets),
                        "article_count": len(entries),
                        "first_seen": iso(row.first_seen),
                        "last_seen": iso(row.last_seen),
                        "outlets": outlets,
                        "articles": [e.id for e in entries],
                    },
                    ensure_ascii=False,
                ).translate(_JSON_C1)
            )
        else:
            click.echo(terminal_safe(f"{row.id}  {len(outlets)} outlets  {iso(row.last_seen)}  {entries[0].title}"))
            click.echo(terminal_safe("    " + ", ".join(outlets)))
    if not as_json and not rows:
        click.echo(f"no stories of {options.min_outlets} outlets or more yet ({total} in all)")
