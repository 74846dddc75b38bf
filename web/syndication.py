"""Any search as a feed (Atom, RFC 4287; RSS 2.0) and the OpenSearch 1.1 description of the site."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from flask import Blueprint, Response, request
from lxml import etree
from lxml.builder import ElementMaker

from aggregator.errors import QueryError
from aggregator.models import Entry
from aggregator.normalize.urls import is_http_url

from .api import SearchRequest, run_search, search_request
from .public_url import public_root
from .serialize import entry_link, iso

syndication = Blueprint("syndication", __name__)

ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
#: Entries in a search feed unless per_page says otherwise.
FEED_SIZE = 50


# Characters XML 1.0 does not allow (section 2.2): lxml refuses to write them, and one in a
# stored title or in the query turned the whole feed into a 500. DEL and the C1 controls it
# allows but discourages (section 2.2's note) go too: no reader wants them.
_NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str | None) -> str:
    """Return ``value`` without the characters an XML document cannot carry."""
    return _NOT_XML.sub("", value or "")


def _feed_request() -> SearchRequest:
    args = request.args.copy()
    # Subscribers want what is new: a search feed lists the newest matches unless told otherwise.
    args.setdefault("sort", "newest")
    return search_request(args, per_page=FEED_SIZE)


def _query_string(wanted: SearchRequest, **extra: str) -> str:
    pairs: list[tuple[str, str]] = [("q", wanted.q)]
    f = wanted.filters
    pairs += [("source", v) for v in f.sources] + [("tag", v) for v in f.tags] + [("lang", v) for v in f.languages]
    for name in ("from", "to"):
        if request.args.get(name):
            pairs.append((name, request.args[name]))
    pairs += list(extra.items())
    return urlencode(pairs)


def _tag_uri(entry_id: str) -> str:
    # RFC 4151 tag URIs: permanent ids that do not break when the site moves or the search changes.
    host = urlsplit(public_root()).hostname or "localhost"
    return f"tag:{host},2024:entry:{entry_id}"


def _link(entry: Entry) -> str:
    """Return the link a feed item carries: the article, or our own page for it when the feed gave none."""
    # An entry flagged url_missing holds the site's home page as its URL: never hand that out as the article.
    return entry_link(entry) or f"{public_root()}/entries/{quote(entry.id, safe='')}"


def atom_entry(E: ElementMaker, entry: Entry, summary: Any) -> Any:
    """Return an Atom <entry> for ``entry`` with its title, id, link and dates, and the <summary> given."""
    return E.entry(
        E.title(xml_text(entry.title)),
        E.id(_tag_uri(entry.id)),
        E.link(rel="alternate", type="text/html", href=xml_text(_link(entry))),
        E.published(iso(entry.published_at)),
        E.updated(iso(entry.updated_at or entry.published_at)),
        summary,
    )


def _xml(root: Any, media_type: str) -> Response:
    body = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return Response(body, mimetype=media_type, headers={"Cache-Control": "max-age=300"})


def _bad_request(exc: QueryError) -> Response:
    return Response(f"{exc}\n", status=400, mimetype="text/plain")


def _prepare() -> tuple[SearchRequest, Any, str, str] | Response:
    """Return (request, results, public root URL, query string) for a search feed, or a 400 response."""
    try:
        wanted = _feed_request()
        results = run_search(wanted)
    except QueryError as exc:
        return _bad_request(exc)
    return wanted, results, public_root(), _query_string(wanted)


@syndication.get("/search.atom")
def search_atom() -> Response:
    prepared = _prepare()
    if isinstance(prepared, Response):
        return prepared
    wanted, results, root_url, query_string = prepared
    E = ElementMaker(namespace=ATOM, nsmap={None: ATOM, "opensearch": OPENSEARCH})
    feed = E.feed(
        E.title(xml_text(f"Newsdesk: {wanted.q}" if wanted.q else "Newsdesk search")),
        E.subtitle("Search results as a feed"),
        E.id(xml_text(f"{root_url}/search.atom?{query_string}")),
        E.updated(iso(max((h.entry.published_at for h in results.hits), default=datetime.now(UTC)))),
        E.link(rel="self", type="application/atom+xml", href=xml_text(f"{root_url}/search.atom?{query_string}")),
        E.link(rel="alternate", type="text/html", href=xml_text(f"{root_url}/?{query_string}")),
        E.generator("Newsdesk"),
    )
    for name, value in (("totalResults", results.total_groups), ("itemsPerPage", results.per_page)):
        child = etree.SubElement(feed, f"{{{OPENSEARCH}}}{name}")
        child.text = str(value)
    for hit in results.hits:
        entry = hit.entry
        item = atom_entry(E, entry, E.summary(xml_text(hit.snippet), type="html"))
        for author in entry.authors or (entry.source.title,):
            item.append(E.author(E.name(xml_text(author))))
        for tag in entry.tags:
            item.append(E.category(term=xml_text(tag)))
        source = E.source(E.title(xml_text(entry.source.title)))
        if is_http_url(entry.source.feed_url):
            source.append(E.id(xml_text(entry.source.feed_url)))
        # Only http(s) links: a feed's own <link> may say javascript:.
        if is_http_url(entry.source.site_url):
            source.append(E.link(rel="alternate", href=xml_text(entry.source.site_url)))
        item.append(source)
        feed.append(item)
    return _xml(feed, "application/atom+xml")


@syndication.get("/search.rss")
def search_rss() -> Response:
    prepared = _prepare()
    if isinstance(prepared, Response):
        return prepared
    wanted, results, root_url, query_string = prepared
    rss = etree.Element("rss", version="2.0", nsmap={"atom": ATOM})
    channel = etree.SubElement(rss, "channel")
    for name, value in (
        ("title", f"Newsdesk: {wanted.q}" if wanted.q else "Newsdesk search"),
        ("link", f"{root_url}/?{query_string}"),
        ("description", f"Newsdesk search results for {wanted.q!r}"),
        ("generator", "Newsdesk"),
    ):
        etree.SubElement(channel, name).text = xml_text(value)
    etree.SubElement(
        channel,
        f"{{{ATOM}}}link",
        rel="self",
        type="application/rss+xml",
        href=xml_text(f"{root_url}/search.rss?{query_string}"),
    )
    for hit in results.hits:
        entry = hit.entry
        item = etree.SubElement(channel, "item")
        etree.SubElement(item, "title").text = xml_text(entry.title)
        etree.SubElement(item, "link").text = xml_text(_link(entry))
        etree.SubElement(item, "guid", isPermaLink="false").text = _tag_uri(entry.id)
        # RSS 2.0 dates are RFC 822 dates (with four-digit years, as RFC 1123 amends).
        etree.SubElement(item, "pubDate").text = format_datetime(entry.published_at, usegmt=True)
        etree.SubElement(item, "description").text = xml_text(hit.snippet)
        for tag in entry.tags:
            etree.SubElement(item, "category").text = xml_text(tag)
        etree.SubElement(item, "source", url=xml_text(entry.source.feed_url)).text = xml_text(entry.source.title)
    return _xml(rss, "application/rss+xml")


@syndication.get("/opensearch.xml")
def opensearch() -> Response:
    root_url = public_root()
    E = ElementMaker(namespace=OPENSEARCH, nsmap={None: OPENSEARCH})
    description = E.OpenSearchDescription(
        E.ShortName("Newsdesk"),
        E.Description("Search the news aggregated by this Newsdesk."),
        E.InputEncoding("UTF-8"),
        E.OutputEncoding("UTF-8"),
        E.Url(type="text/html", method="get", template=f"{root_url}/?q={{searchTerms}}&page={{startPage?}}"),
        E.Url(type="application/atom+xml", template=f"{root_url}/search.atom?q={{searchTerms}}&page={{startPage?}}"),
        E.Url(type="application/rss+xml", template=f"{root_url}/search.rss?q={{searchTerms}}&page={{startPage?}}"),
        E.Url(type="application/json", template=f"{root_url}/api/v1/search?q={{searchTerms}}&page={{startPage?}}"),
        E.Url(type="application/opensearchdescription+xml", rel="self", template=f"{root_url}/opensearch.xml"),
        E.Query(role="example", searchTerms="dock strike"),
    )
    return _xml(description, "application/opensearchdescription+xml")
