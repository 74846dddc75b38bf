"""CLI: search and index maintenance."""

from __future__ import annotations

import json

import click

from .cli import CliState, main
from .serialize import iso


@main.command()
@click.pass_obj
def reindex(state: CliState) -> None:
    """Rebuild the search index from the store and swap it in atomically."""
    services = state.services
    stats = services.indexer().rebuild(services.store)
    click.echo(f"reindexed {stats.upserts} entries (change seq {stats.seq})")


@main.command("index")
@click.pass_obj
def index_command(state: CliState) -> None:
    """Apply pending store changes to the search index."""
    services = state.services
    stats = services.indexer().catch_up()
    click.echo(f"indexed {stats.upserts} upserts, {stats.deletes} deletes (change seq {stats.seq})")


@main.command("search")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--page", default=1, show_default=True)
@click.option("--per-page", default=10, show_default=True)
@click.pass_obj
def search_command(state: CliState, query: str, as_json: bool, page: int, per_page: int) -> None:
    """Search the index."""
    from index.search import search

    services = state.services
    results = search(services.reader, services.store, query, page=page, per_page=per_page)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "total": results.total,
                    "page": results.page,
                    "notices": list(results.notices),
                    "hits": [
                        {
                            "id": h.entry.id,
                            "url": h.entry.url,
                            "title": h.entry.title,
                            "source": h.entry.source.title,
                            "published_at": iso(h.entry.published_at),
                            "snippet": h.snippet,
                            "score": round(h.score, 4),
                        }
                        for h in results.hits
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    for notice in results.notices:
        click.echo(f"note: {notice}")
    click.echo(f"{results.total} results")
    for h in results.hits:
        click.echo(f"- {h.entry.title}  [{h.entry.source.title}, {iso(h.entry.published_at)}]\n  {h.entry.url}")
