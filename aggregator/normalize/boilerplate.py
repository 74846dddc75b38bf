"""Rules that find the parts of an article body that are not the article: share bars, pitches, related links.

They are general rules about structure (class and id names that sites use for these blocks, headings
that announce them, link density) rather than rules for one site.
"""

from __future__ import annotations

import re

from lxml import etree

from .text import is_boilerplate

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
_SPACE = re.compile(r"\s+")
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
# whatever language its labels are in.
_SHARE_URL = re.compile(
    r"facebook\.com/(?:sharer|share\.php|dialog/share)|twitter\.com/(?:intent|share)|x\.com/intent"
    r"|linkedin\.com/(?:sharearticle|shareArticle|share)|pinterest\.[a-z.]+/pin/create|reddit\.com/submit"
    r"|api\.whatsapp\.com/send|wa\.me/\?|t\.me/share|telegram\.me/share|getpocket\.com/save|tumblr\.com/share"
    r"|^mailto:\?|addtoany\.com/share|news\.ycombinator\.com/submitlink|bsky\.app/intent|mastodonshare",
    re.I,
)
_SHARE_BLOCKS = frozenset({"p", "div", "ul", "ol", "li", "section", "span"})
_FEEDBURNER_FLARE = re.compile(r"feedburner\.com/~(?:ff|a|f)/|feedproxy\.google\.com/~(?:ff|a|f)/")


def _has_boilerplate_class(element: etree._Element) -> bool:
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
    if not names.strip():
        return False
    return any(token in _BOILERPLATE_TOKENS for token in _TOKEN_SPLIT.split(names))


def _text_length(element: etree._Element) -> int:
    return len("".join(element.itertext()).strip())


def _link_density(element: etree._Element, total: int) -> float:
    linked = sum(len("".join(a.itertext()).strip()) for a in element.iter("a"))
    return linked / total if total else 0.0


def boilerplate_elements(root: etree._Element) -> list[etree._Element]:
    """Return the elements under ``root`` that are boilerplate, outermost first (may nest)."""
    whole = _text_length(root)
    # Never remove something holding most of the text: a class rule gone wrong must not empty the article.
    ceiling = max(whole * 0.5, 200)
    found: list[etree._Element] = []
    for element in root.iterdescendants():
        tag = element.tag
        if not isinstance(tag, str):
            continue
        if tag == "a":
            href = element.get("href") or ""
            if _FEEDBURNER_FLARE.search(href):
                found.append(element)
                continue
            label = "".join(element.itertext())
            if len(label) < 200 and _READ_MORE.match(label.strip()):
                found.append(element)
                continue
        if tag in _SHARE_BLOCKS:
            links = [a.get("href") or "" for a in element.iter("a")]
            if links and all(_SHARE_URL.search(link) for link in links) and _text_length(element) < 300:
                found.append(element)
                continue
        if tag in _CONTAINERS and _has_boilerplate_class(element) and _text_length(element) < ceiling:
            found.append(element)
            continue
        if tag in _HEADINGS or tag == "p":
            raw = "".join(element.itertext())
            # Long paragraphs are article text; only short ones are worth the pattern match.
            text = _SPACE.sub(" ", raw).strip() if len(raw) < 1000 else ""
            if text and is_boilerplate(text):
                # A heading like "Related coverage" announces the block it opens: remove that block
                # when the heading leads a container of its own, else just the heading.
                parent = element.getparent()
                if (
                    tag in _HEADINGS
                    and parent is not None
                    and parent is not root
                    and parent.index(element) == 0
                    and _text_length(parent) < ceiling
                ):
                    found.append(parent)
                else:
                    found.append(element)
                continue
        if tag in _LINK_DENSE_CONTAINERS:
            length = _text_length(element)
            if (
                0 < length < min(ceiling, 600)
                and len(element.findall(".//a")) >= 2
                and _link_density(element, length) > 0.6
            ):
                found.append(element)
    return found


def is_paragraph_tag(tag: str) -> bool:
    """Return True for tags whose text is checked as a whole paragraph."""
    return tag in _PARAGRAPHS
