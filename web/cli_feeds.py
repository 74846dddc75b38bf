"""CLI: polling and feed management."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from aggregator.update import sync_config_feeds, update_feeds

from .cli import CliState, catch_up_index, fail, main
from .serialize import feed_json, iso


@main.command()
@click.option("--once", is_flag=True, help="Check the feeds that are due, index, and exit.")
@click.option("--all", "check_all", is_flag=True, help="Check every enabled feed now (not those backing off).")
@click.option("--no-index", is_flag=True, help="Store entries but leave indexing to a later run.")
@click.argument("feed", required=False)
@click.pass_obj
def poll(state: CliState, once: bool, check_all: bool, no_index: bool, feed: str | None) -> None:
    """Check feeds for new entries (FEED: one feed's URL or id)."""
    services = state.services
    sync_config_feeds(services.store, state.config)
    now = datetime.now(UTC)
    if feed:
        found = services.store.find_feed(feed) or (services.store.get_feed(int(feed)) if feed.isdigit() else None)
        if found is None:
            fail(f"no feed {feed!r}; see `newsdesk feeds list`")
        assert found is not None
        targets = [found]
    elif check_all:
        targets = []
        for f in services.store.list_feeds(enabled_only=True):
            waiting = f.retry_after_until if f.retry_after_until and f.retry_after_until > now else None
            if waiting or (f.consecutive_failures and f.next_check_at and f.next_check_at > now):
                due = iso(waiting or f.next_check_at)
                click.echo(f"skipped {f.url}: {'server asked us to wait' if waiting else 'backing off'} until {due}")
                continue
            targets.append(f)
    else:
        targets = services.store.due_feeds(now)
    results = update_feeds(services.store, targets, state.config)
    for result in results:
        if result.error:
            click.echo(f"error   {result.url}: {result.error}")
        else:
            click.echo(
                f"ok      {result.url}: HTTP {result.status}, {result.new_entries} new, {result.updated_entries} updated"
            )
    if not no_index:
        catch_up_index(services)
    if not once and not feed and not check_all:
        click.echo("(use `newsdesk run` to keep polling on schedule)")


@main.group()
def feeds() -> None:
    """List, add and remove feeds."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed per line.")
@click.pass_obj
def feeds_list(state: CliState, as_json: bool) -> None:
    """Show every feed and its polling state."""
    services = state.services
    sync_config_feeds(services.store, state.config)
    for feed in services.store.list_feeds():
        if as_json:
            click.echo(json.dumps(feed_json(feed), ensure_ascii=False))
        else:
            status = feed.last_status if feed.last_status is not None else "-"
            click.echo(
                f"{feed.id:>4} {'on ' if feed.enabled else 'off'} {feed.url}\n"
                f"     {feed.title} | last check {iso(feed.last_checked_at) or 'never'} | status {status} | "
                f"failures {feed.consecutive_failures} | next {iso(feed.next_check_at) or '-'} | "
                f"{feed.entry_count} entries"
                + (f"\n     error: {feed.last_error}" if feed.last_error else "")
                + (f"\n     disabled: {feed.disabled_reason}" if feed.disabled_reason else "")
            )


@feeds.command("add")
@click.argument("url")
@click.option("--title", default=None)
@click.option("--tag", "tags", multiple=True)
@click.pass_obj
def feeds_add(state: CliState, url: str, title: str | None, tags: tuple[str, ...]) -> None:
    """Add a feed by URL or path (polled on the next scheduler tick)."""
    from aggregator.config import check_feed_url

    check_feed_url(url, "url")
    feed = state.services.store.add_feed(url, title=title, tags=tags, origin="cli")
    click.echo(f"added feed {feed.id}: {feed.url}")


@feeds.command("remove")
@click.argument("feed")
@click.pass_obj
def feeds_remove(state: CliState, feed: str) -> None:
    """Remove a feed (by URL or id) and its entries."""
    store = state.services.store
    found = store.find_feed(feed) or (store.get_feed(int(feed)) if feed.isdigit() else None)
    if found is None:
        fail(f"no feed {feed!r}; see `newsdesk feeds list`")
    assert found is not None
    removed = store.remove_feed(found.id)
    click.echo(f"removed feed {found.id} ({found.url}) and {removed} entries")
