"""How Newsdesk's processes name themselves to PostgreSQL, so each role can see who else uses a store.

A `newsdesk poller` connects as ``newsdesk-poller NAME``; a process that polls without leases
(`newsdesk run`, `newsdesk poll`) as ``newsdesk-writer NAME``; a web node as ``newsdesk-web NAME``.
Pollers and writers look each other up in ``pg_stat_activity`` before they start, and refuse to
poll beside the other kind (`aggregator.pollnode`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: The application name prefix of `newsdesk poller` sessions.
POLLER_SESSION = "newsdesk-poller"
#: The application name prefix of `newsdesk run` / `newsdesk poll` sessions on PostgreSQL.
WRITER_SESSION = "newsdesk-writer"
#: The application name prefix of `newsdesk serve --follow` sessions.
WEB_NODE_SESSION = "newsdesk-web"


def with_application_name(url: str, name: str) -> str:
    """Return the database URL naming this node to PostgreSQL (pg_stat_activity shows who is connected)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "application_name"]
    query.append(("application_name", name[:63]))
    return urlunsplit(parts._replace(query=urlencode(query)))
