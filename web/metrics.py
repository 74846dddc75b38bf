"""Prometheus metrics: one registry per Services, fed by the poller, the web layer and the store at scrape time.

Counters and histograms move as things happen (a poll observer for checks and fetches, request hooks
for search and related coverage); gauges that describe state (index lag, feeds by state) are read from
the store when Prometheus scrapes, so `newsdesk serve` shows them too although it never polls.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from aggregator.models import Feed, UpdateResult
from aggregator.observe import OUTCOMES, PollObserver
from aggregator.store import Store
from index.indexer import Indexer

from .serialize import FEED_STATES, feed_state

log = logging.getLogger("newsdesk.metrics")

#: Endpoints whose latency is search latency (the front page counts only when it searches).
SEARCH_ENDPOINTS = frozenset(
    {"api.search_api", "pages.search_page", "syndication.search_atom", "syndication.search_rss"}
)
#: Endpoints whose latency is related-coverage latency.
RELATED_ENDPOINTS = frozenset({"related.related_json", "embed.related_frame"})
#: Feed fetches take from milliseconds (304 nearby) to the polling deadline (60 s by default).
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """The metrics of one Newsdesk process, in a registry of their own (never the global default)."""

    def __init__(
        self, store: Store, index_dir: Path, replica_status: Callable[[datetime], dict[str, Any] | None] | None = None
    ) -> None:
        # A registry per Services: tests and several apps in one process never see each other's samples.
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("newsdesk_polls", "Feed checks, by outcome.", ["outcome"], registry=r)
        self.fetch_seconds = Histogram(
            "newsdesk_fetch_duration_seconds", "Time one feed's HTTP fetch took.", buckets=FETCH_BUCKETS, registry=r
        )
        self.entries_ingested = Counter(
            "newsdesk_entries_ingested", "Entries stored by polls: new ones and changed ones.", ["kind"], registry=r
        )
        self.search_seconds = Histogram(
            "newsdesk_search_duration_seconds", "Time a search request took, by endpoint.", ["endpoint"], registry=r
        )
        self.related_seconds = Histogram(
            "newsdesk_related_duration_seconds",
            "Time a related-coverage request took, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.requests = Counter(
            "newsdesk_http_requests",
            "HTTP requests answered, by endpoint and status.",
            ["endpoint", "status"],
            registry=r,
        )
        # Every outcome and kind is shown from the start, so rate() and alerts work before the first event.
        for outcome in OUTCOMES:
            self.polls.labels(outcome)
        for kind in ("new", "updated"):
            self.entries_ingested.labels(kind)
        r.register(StoreCollector(store, index_dir, replica_status))
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

    def observer(self) -> PollObserver:
        """Return a poll observer that counts checks, fetch times and ingested entries here."""
        return _PollMetrics(self)

    def install(self, app: Flask) -> None:
        """Time every request of ``app``: search and related latency, and requests by endpoint and status."""
        app.before_request(_start_timer)

        @app.after_request
        def observe(response: Response) -> Response:
            started = g.pop("newsdesk_started", None)
            endpoint = request.endpoint or "unmatched"
            self.requests.labels(endpoint, str(response.status_code)).inc()
            if started is not None:
                elapsed = time.perf_counter() - started
                if endpoint in SEARCH_ENDPOINTS and (endpoint != "pages.search_page" or request.args):
                    self.search_seconds.labels(endpoint).observe(elapsed)
                elif endpoint in RELATED_ENDPOINTS:
                    self.related_seconds.labels(endpoint).observe(elapsed)
            return response

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """Return the metrics in the format ``accept`` asks for (OpenMetrics or Prometheus text) and its type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def _start_timer() -> None:
    g.newsdesk_started = time.perf_counter()


class _PollMetrics(PollObserver):
    """Feeds poll events into Metrics (called from the poller's threads; prometheus_client is thread-safe)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def fetched(self, feed: Feed, seconds: float, status: int | None) -> None:
        """Record how long the fetch took."""
        self.metrics.fetch_seconds.observe(seconds)

    def checked(self, feed: Feed, result: UpdateResult, outcome: str) -> None:
        """Count the check and the entries it stored."""
        self.metrics.polls.labels(outcome).inc()
        if result.new_entries:
            self.metrics.entries_ingested.labels("new").inc(result.new_entries)
        if result.updated_entries:
            self.metrics.entries_ingested.labels("updated").inc(result.updated_entries)


class StoreCollector:
    """Gauges read at scrape time: index lag, feeds by state, stored entries, last check, store reachability."""

    def __init__(
        self, store: Store, index_dir: Path, replica_status: Callable[[datetime], dict[str, Any] | None] | None = None
    ) -> None:
        self.store = store
        self.index_dir = index_dir
        #: A web follower's replica status (index.follower.Follower.status; None: no replica), read per scrape.
        self.replica_status = replica_status

    def describe(self) -> Iterable[Metric]:
        """Return the families this collector yields, without reading the store."""
        return list(self._families())

    def _families(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("newsdesk_store_up", "1 when the store answered this scrape, else 0.")
        yield GaugeMetricFamily("newsdesk_index_lag_changes", "Store changes not yet applied to the search index.")
        yield GaugeMetricFamily(
            "newsdesk_index_lag_seconds", "Age of the oldest store change not yet in the search index (0: none)."
        )
        yield GaugeMetricFamily("newsdesk_feeds", "Feeds by state.", labels=["state"])
        yield GaugeMetricFamily("newsdesk_entries", "Entries in the store.")
        yield GaugeMetricFamily(
            "newsdesk_last_check_timestamp_seconds", "When any feed was last checked (Unix time; absent: never)."
        )

    def collect(self) -> Iterator[Metric]:
        """Read the store and the index state and return the gauges (store_up 0 when the store fails)."""
        store = self.store
        up, lag_changes, lag_seconds, states, entries, last_check = self._families()
        try:
            now = datetime.now(UTC)
            replica = self.replica_status(now) if self.replica_status is not None else None
            if replica is not None:  # a web node's own replica: its lag behind the change log
                pending, lag = replica["lag_changes"], replica["lag_seconds"]
            else:
                seq = Indexer(self.index_dir, store).indexed_seq()
                pending, oldest = store.pending_changes(seq)
                lag = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            lag_changes.add_metric([], pending)
            lag_seconds.add_metric([], lag)
            counts = dict.fromkeys(FEED_STATES, 0)
            for (enabled, reason, checked, failing), count in store.feed_state_counts().items():
                state = feed_state(enabled=enabled, disabled_reason=reason, checked=checked, failing=failing)
                counts[state] += count
            for state, count in counts.items():
                states.add_metric([state], count)
            entries.add_metric([], store.count_entries())
            checked_at = store.last_check_at()
            if checked_at is not None:
                last_check.add_metric([], checked_at.timestamp())
        except Exception as exc:  # a scrape must answer, saying the store is down, rather than fail
            log.warning("metrics: the store did not answer: %s", exc)
            yield _single(up, 0)
            return
        yield _single(up, 1)
        yield from (lag_changes, lag_seconds, states, entries, last_check)


def _single(family: GaugeMetricFamily, value: float) -> GaugeMetricFamily:
    family.add_metric([], value)
    return family


# ---------------------------------------------------------------------- who may read /metrics

_FORWARDED_FOR = re.compile(r'for\s*=\s*("?)([^;,"]*)\1', re.IGNORECASE)


def client_addresses(remote_addr: str | None, headers: Any) -> list[str]:
    """Return every address a request came through: the TCP peer and any a proxy named in its headers."""
    addresses = [remote_addr or ""]
    addresses += [a.strip() for a in headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    if headers.get("X-Real-IP"):
        addresses.append(headers["X-Real-IP"].strip())
    for match in _FORWARDED_FOR.finditer(headers.get("Forwarded", "")):
        addresses.append(match.group(2).strip())
    return addresses


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # RFC 7239 quotes IPv6 as "[2001:db8::1]:4711"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d
    return address


def metrics_allowed(addresses: list[str], allow: Iterable[str]) -> bool:
    """Return whether every address is inside the allow-list ("*" allows anyone; an empty list no one).

    Every hop counts, not only the TCP peer: behind a reverse proxy on the same machine the peer is
    127.0.0.1 for everyone, and the X-Forwarded-For it adds is what tells the outside world apart.
    A forged header can only add addresses, so it can refuse a request but never admit one.
    """
    allow = list(allow)
    if "*" in allow:
        return True
    networks = [ipaddress.ip_network(a, strict=False) for a in allow]
    if not networks:
        return False
    for text in addresses:
        address = _address(text)
        if address is None or not any(address in network for network in networks):
            return False
    return True
