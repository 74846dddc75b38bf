"""OPML subscription lists in and out, keeping titles and categories (OPML 2.0, read leniently)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from lxml import etree

from .config import check_feed_url
from .errors import ConfigError
from .models import Feed


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription read from an OPML file."""

    #: The feed's URL (xmlUrl).
    url: str
    #: Its title (title, else text), or None.
    title: str | None
    #: Categories: the enclosing folders' names, then the category attribute's entries.
    categories: tuple[str, ...]
    #: The site's home page (htmlUrl), or None.
    site_url: str | None


@dataclass(frozen=True)
class OpmlSkip:
    """An outline that names a feed we cannot use, and why."""

    #: The xmlUrl as written.
    url: str
    #: Why it was skipped, in plain words.
    reason: str


def _parser() -> etree.XMLParser:
    # No entities, no network, no DTD: an OPML file is untrusted input (billion laughs, XXE).
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _clean(value: str | None) -> str | None:
    value = " ".join((value or "").split())
    return value or None


def read_opml(data: bytes, *, label: str = "OPML file") -> tuple[list[OpmlFeed], list[OpmlSkip]]:
    """Return the feeds an OPML document lists (folders become categories) and the outlines skipped."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{label}: not a readable OPML document: {exc}") from exc
    if etree.QName(root).localname.lower() != "opml":
        raise ConfigError(f"{label}: not an OPML document (the root element is <{etree.QName(root).localname}>)")
    body = next((child for child in root if etree.QName(child).localname.lower() == "body"), None)
    if body is None:
        raise ConfigError(f"{label}: the OPML document has no <body>")
    feeds: list[OpmlFeed] = []
    skipped: list[OpmlSkip] = []
    seen: set[str] = set()

    def walk(element: etree._Element, folders: tuple[str, ...]) -> None:
        for outline in element:
            if not isinstance(outline.tag, str) or etree.QName(outline).localname.lower() != "outline":
                continue
            attrs = {k.lower(): v for k, v in outline.attrib.items()}
            name = _clean(attrs.get("title")) or _clean(attrs.get("text"))
            url = (attrs.get("xmlurl") or "").strip()
            if not url:
                walk(outline, (*folders, name) if name else folders)
                continue
            try:
                check_feed_url(url, "xmlUrl")
            except ConfigError as exc:
                skipped.append(OpmlSkip(url, str(exc).removeprefix("xmlUrl: ")))
                continue
            if url in seen:
                skipped.append(OpmlSkip(url, "listed twice; the first listing was kept"))
                continue
            seen.add(url)
            # OPML 2.0 category: comma-separated, slash-delimited paths ("/Tech/News,/Daily").
            extra = [c.strip().strip("/") for c in (attrs.get("category") or "").split(",")]
            categories: list[str] = []
            for category in (*folders, *extra):
                if category and category.lower() not in {c.lower() for c in categories}:
                    categories.append(category)
            feeds.append(OpmlFeed(url, name, tuple(categories), _clean(attrs.get("htmlurl"))))
            walk(outline, folders)  # nested outlines under a feed are unusual but legal

    walk(body, ())
    return feeds, skipped


def write_opml(feeds: Iterable[Feed], *, title: str = "Newsdesk subscriptions", now: datetime | None = None) -> bytes:
    """Return an OPML 2.0 document listing ``feeds``, filed in a folder per first tag, all tags in category."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(UTC), usegmt=True)
    body = etree.SubElement(root, "body")
    folders: dict[str, etree._Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            if feed.tags[0] not in folders:
                folders[feed.tags[0]] = etree.SubElement(body, "outline", text=feed.tags[0], title=feed.tags[0])
            parent = folders[feed.tags[0]]
        attrs = {"type": "rss", "text": feed.title or feed.url, "title": feed.title or feed.url, "xmlUrl": feed.url}
        if feed.site_url:
            attrs["htmlUrl"] = feed.site_url
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        etree.SubElement(parent, "outline", attrs)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data
