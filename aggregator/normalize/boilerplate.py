"""Rules that find the parts of an article body that are not the article: share bars, pitches, related links.

They are general rules about structure (class and id names that sites use for these blocks, headings
that announce them, link density) rather than rules for one site.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree

from .text import is_boilerplate_raw

# Tokens of class/id attributes that mark injected blocks. Matched per token ("related-coverage" ->
# "related", "coverage") so that "sharedaddy" or "jp-relatedposts" match but "entry-content" does not.
_BOILERPLATE_TOKENS = frozenset(
    {
        "share",
        "shares",
        "sharing",
        "sharedaddy",
        "sharethis",
        "addtoany",
        "a2a",
        "social",
        "socials",
        "related",
        "relatedposts",
        "yarpp",
        "newsletter",
        "subscribe",
        "subscription",
        "signup",
        "donate",
        "donation",
        "promo",
        "advert",
        "advertisement",
        "ad",
        "ads",
        "adsbygoogle",
        "sponsor",
        "sponsored",
        "cookie",
        "cookies",
        "consent",
        "gdpr",
        "captcha",
        "recaptcha",
        "feedflare",
        "outbrain",
        "taboola",
        "paywall",
        "nocontent",
    }
)
_TOKEN_SPLIT = re.compile(r"[\s_-]+")
# Elements that a class/id rule may remove; never the wrapper itself or inline text formatting.
_CONTAINERS = frozenset(
    {
        "div",
        "section",
        "aside",
        "ul",
        "ol",
        "p",
        "nav",
        "footer",
        "header",
        "table",
        "span",
        "a",
        "figure",
        "blockquote",
    }
)
_LINK_DENSE_CONTAINERS = frozenset({"div", "section", "aside", "ul", "ol", "table", "nav", "footer"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_PARAGRAPHS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "dd", "dt"})
_READ_MORE = re.compile(
    r"^(?:continue reading|read more|keep reading|read the full (?:story|article|post)|weiterlesen|mehr lesen"
    r"|lire la suite|leer más|seguir leyendo|continua a leggere|leggi tutto|leia mais|lees verder|czytaj dalej"
    r"|читать далее|続きを読む)",
    re.I,
)
# Share-intent endpoints of the big networks: a block whose links all go there is a share bar,
# whatever language its labels are in. Matched against the lower-cased URL: a case-insensitive
# search costs four times as much.
_SHARE_URL = re.compile(
    r"facebook\.com/(?:sharer|share\.php|dialog/share)|twitter\.com/(?:intent|share)|x\.com/intent"
    r"|linkedin\.com/(?:sharearticle|share)|pinterest\.[a-z.]+/pin/create|reddit\.com/submit"
    r"|api\.whatsapp\.com/send|wa\.me/\?|t\.me/share|telegram\.me/share|getpocket\.com/save|tumblr\.com/share"
    r"|^mailto:\?|addtoany\.com/share|news\.ycombinator\.com/submitlink|bsky\.app/intent|mastodonshare"
)
_SHARE_BLOCKS = frozenset({"p", "div", "ul", "ol", "li", "section", "span"})
# Every tag some rule below can act on; lxml hands Python only these, not every <em> or <code>.
_CANDIDATES = tuple(sorted({"a"} | _SHARE_BLOCKS | _CONTAINERS | _HEADINGS | {"p"} | _LINK_DENSE_CONTAINERS))
_FEEDBURNER_FLARE = re.compile(r"feedburner\.com/~(?:ff|a|f)/|feedproxy\.google\.com/~(?:ff|a|f)/")


def element_text(element: etree._Element) -> str:
    """Return the text of ``element`` and everything inside it (not its tail), as itertext() joined.

    libxml2 gathers it in one call: about three times faster than joining itertext() in Python.
    """
    text: str = etree.tostring(element, method="text", encoding="unicode", with_tail=False)
    return text


def _has_boilerplate_class(element: etree._Element) -> bool:
    return _is_boilerplate_names(element.get("class"), element.get("id"))


@lru_cache(maxsize=4096)
def _is_boilerplate_names(class_names: str | None, element_id: str | None) -> bool:
    # Cached: pages repeat a handful of class names on thousands of elements (syntax highlighting
    # gives every token a <span class="n">).
    names = f"{class_names or ''} {element_id or ''}".lower()
    if not names.strip():
        return False
    return any(token in _BOILERPLATE_TOKENS for token in _TOKEN_SPLIT.split(names))


def _measure(root: etree._Element) -> dict[etree._Element, tuple[int, int, int, int]]:
    """Return, per element: text length, linked text length, link count, share-link count."""
    # One bottom-up pass instead of itertext() per candidate, which is quadratic on deep trees.
    stats: dict[etree._Element, tuple[int, int, int, int]] = {}
    get = stats.get
    for _event, element in etree.iterwalk(root, events=("end",)):
        text = element.text
        length = len(text.strip()) if text else 0
        linked = links = shares = 0
        for child in element:
            child_stats = get(child)
            if child_stats is not None:
                child_length, child_linked, child_links, child_shares = child_stats
                length += child_length
                if child_links:
                    linked += child_linked
                    links += child_links
                    shares += child_shares
            tail = child.tail
            if tail:
                length += len(tail.strip())
        if element.tag == "a":
            linked = length
            links += 1
            if _SHARE_URL.search((element.get("href") or "").lower()):
                shares += 1
        stats[element] = (length, linked, links, shares)
    return stats


def boilerplate_elements(root: etree._Element) -> list[etree._Element]:
    """Return the elements under ``root`` that are boilerplate, outermost first (may nest)."""
    stats = _measure(root)
    whole = stats[root][0]
    # Never remove something holding most of the text: a class rule gone wrong must not empty the article.
    ceiling = max(whole * 0.5, 200)
    found: list[etree._Element] = []
    for element in root.iterdescendants(*_CANDIDATES):
        tag = element.tag
        length, linked, links, shares = stats[element]
        if tag == "a":
            href = element.get("href") or ""
            if _FEEDBURNER_FLARE.search(href):
                found.append(element)
                continue
            if length < 200 and _READ_MORE.match(element_text(element).strip()):
                found.append(element)
                continue
        if tag in _SHARE_BLOCKS and links and shares == links and length < 300:
            found.append(element)
            continue
        if tag in _CONTAINERS and length < ceiling and _has_boilerplate_class(element):
            found.append(element)
            continue
        # Long paragraphs are article text; only short ones are worth the pattern match.
        if (tag in _HEADINGS or tag == "p") and length < 700 and is_boilerplate_raw(element_text(element)):
            # A heading like "Related coverage" announces the block it opens: remove that block
            # when the heading leads a container of its own, else just the heading.
            parent = element.getparent()
            if (
                tag in _HEADINGS
                and parent is not None
                and parent is not root
                and parent.index(element) == 0
                and stats[parent][0] < ceiling
            ):
                found.append(parent)
            else:
                found.append(element)
            continue
        if tag in _LINK_DENSE_CONTAINERS and 0 < length < min(ceiling, 600) and links >= 2 and linked > 0.6 * length:
            found.append(element)
    return found


def is_paragraph_tag(tag: str) -> bool:
    """Return True for tags whose text is checked as a whole paragraph."""
    return tag in _PARAGRAPHS
