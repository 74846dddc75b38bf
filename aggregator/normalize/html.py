"""HTML bodies: one lxml pass removes boilerplate and fixes images and links, nh3 sanitizes, text is extracted."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import nh3
from lxml import etree

from .boilerplate import boilerplate_elements, element_text
from .text import clean_line, clean_paragraphs
from .urls import canonical_url, image_key, is_http_url

# Removed with everything inside before anything else looks at the tree: active content, forms,
# and page furniture that only appears when a feed embeds a whole page.
_DROP_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "form",
        "button",
        "select",
        "textarea",
        "input",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "canvas",
        "nav",
        "aside",
        "footer",
        "head",
        "title",
        "meta",
        "link",
        "base",
        "frameset",
        "frame",
    }
)
_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details", "dfn", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "iframe", "img", "ins",
    "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul", "var", "video", "audio", "source",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "iframe": {"src", "width", "height", "title", "allowfullscreen"},
    "video": {"src", "poster", "controls", "width", "height"},
    "audio": {"src", "controls"},
    "source": {"src", "type"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "reversed"},
    "time": {"datetime"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "abbr": {"title"},
}
# Only players that embed video; everything else in an iframe is ads, trackers or whole pages.
_VIDEO_HOSTS = frozenset(
    {
        "www.youtube.com",
        "youtube.com",
        "www.youtube-nocookie.com",
        "youtube-nocookie.com",
        "player.vimeo.com",
        "www.dailymotion.com",
        "dailymotion.com",
        "geo.dailymotion.com",
    }
)
_URL_ATTRIBUTES = ("href", "src", "poster", "cite")
# Only these tags keep a URL attribute through the allowlist; on any other tag nh3 drops it, so
# resolving it would be wasted work. "image" is there because HTML5 parsers (nh3's html5ever)
# read <image> as <img> while lxml keeps the name (found in the corpus: MDX's <Image src=...>).
_URL_TAGS = (
    *sorted(tag for tag, names in _ALLOWED_ATTRIBUTES.items() if names & set(_URL_ATTRIBUTES)),
    "image",
)
_LAZY_ATTRIBUTES = (
    "data-src",
    "data-lazy-src",
    "data-original",
    "data-lazy",
    "data-orig-file",
    "data-full-url",
    "data-url",
)
_LAZY_SRCSETS = ("data-srcset", "data-lazy-srcset", "srcset")
_PLACEHOLDER = re.compile(r"^data:|lazy|blank\.|placeholder|spacer|transparent|loading|grey\.gif|1x1", re.I)
_TRACKER = re.compile(
    r"/~(?:r|ff|a)/|//(?:pixel|stats|analytics|tracking|track|beacon|counter)\.|doubleclick\.net|google-analytics\.com"
    r"|feedsportal\.com|pixel\.wp\.com|/pixel(?:\.gif|\.png|/|\?|$)|/(?:track|tracking|beacon|open)(?:\.gif|\.png|/|\?)"
    r"|piwik|matomo|/1x1\.|/spacer\.gif",
    re.I,
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")
_TINY = frozenset({"0", "1", "0px", "1px"})
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.I)
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "li",
        "main", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul", "br",
        "video", "audio", "iframe", "img",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_BREAK = "\ue000"
_HAS_BREAK = etree.XPath(f"contains(., '{_BREAK}')")
# The nodes _prepare's first pass looks at: the ones dropped whole, images, and comments and
# processing instructions (the parser removes those, so this is belt and braces).
_PREPARED_NODES = (etree.Comment, etree.ProcessingInstruction, etree.Entity, *_DROP_WITH_CONTENT, "iframe", "img")
# Captions belong to the image record, not the running text.
_NOT_TEXT = frozenset({"figcaption", "img", "iframe", "video", "audio", "source", "picture"})


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    # nh3 checks URL schemes, not hosts: re-check iframe sources here so the allowlist holds even
    # if lxml and nh3 ever disagree on how a malformed tag parses.
    if element == "iframe" and attribute == "src" and not _is_video_embed(value):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)
_IFRAME_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


@dataclass(frozen=True)
class ContentImage:
    """An image found in an article body."""

    #: Absolute URL of the image.
    url: str
    #: Plain-text caption from the enclosing <figure>, or None.
    caption: str | None


@dataclass(frozen=True)
class CleanContent:
    """One HTML body after cleaning."""

    #: Sanitized HTML for display.
    html: str
    #: Plain-text paragraphs (headings included), boilerplate removed.
    paragraphs: tuple[str, ...]
    #: Images of the body in document order, tracking pixels excluded.
    images: tuple[ContentImage, ...]

    @property
    def text(self) -> str:
        """Return the paragraphs joined by blank lines."""
        return "\n\n".join(self.paragraphs)


def _is_video_embed(src: str) -> bool:
    try:
        parts = urlsplit(src.strip())
    except ValueError:
        return False
    return parts.scheme in ("https", "") and (parts.hostname or "").lower() in _VIDEO_HOSTS


# An absolute web URL that urljoin would hand back unchanged: it has a host, and nothing urllib
# splits off and puts back differently (query, fragment, ";params", spaces and controls).
_PLAIN_ABSOLUTE = re.compile(r"https?://[^/?#;\x00-\x20]+(?:/[^?#;\x00-\x20]*)?\Z")


def _join(base: str | None, url: str) -> str:
    url = url.strip()
    if not base or _PLAIN_ABSOLUTE.match(url):
        # Most image and link URLs in feeds are already absolute: no need to parse them twice.
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return url


def _largest_in_srcset(srcset: str) -> str | None:
    best: tuple[float, str] | None = None
    for candidate in srcset.split(","):
        fields = candidate.split()
        if not fields:
            continue
        size = 0.0
        if len(fields) > 1:
            try:
                size = float(fields[1].rstrip("wxWX"))
            except ValueError:
                size = 0.0
        if best is None or size > best[0]:
            best = (size, fields[0])
    return best[1] if best else None


def _fix_lazy_image(img: etree._Element) -> None:
    # Lazy-loading scripts keep the real URL in a data-* attribute and a placeholder in src; we run
    # no scripts, so promote the real one.
    src = (img.get("src") or "").strip()
    if src and not _PLACEHOLDER.search(src):
        return
    for name in _LAZY_ATTRIBUTES:
        value = (img.get(name) or "").strip()
        if value and not value.startswith("data:"):
            img.set("src", value)
            return
    for name in _LAZY_SRCSETS:
        value = img.get(name)
        if value and (best := _largest_in_srcset(value)) and not best.startswith("data:"):
            img.set("src", best)
            return


def _is_tracking_pixel(img: etree._Element, src: str) -> bool:
    width = (img.get("width") or "").strip().lower()
    height = (img.get("height") or "").strip().lower()
    return (width in _TINY and height in _TINY) or (width in _TINY and not height) or bool(_TRACKER.search(src))


def _figure_caption(img: etree._Element) -> str | None:
    for ancestor in img.iterancestors("figure"):
        for caption in ancestor.iter("figcaption"):
            text = clean_line("".join(caption.itertext()))
            if text:
                return text
        break
    return None


_PARSERS = threading.local()


def _parser() -> etree.HTMLParser:
    # lxml parsers must not be shared between threads; the update code polls feeds in a pool.
    parser: etree.HTMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, default_doctype=False)
        _PARSERS.parser = parser
    return parser


def _parse(markup: str) -> etree._Element | None:
    markup = _BAD_CHARS.sub("", _XML_DECLARATION.sub("", markup))
    if not markup.strip():
        return None
    # Plain etree elements (not lxml.html's HtmlElement) skip a class lookup per node; the <body>
    # libxml2 builds around the fragment is the root we work on.
    try:
        document = etree.fromstring(f"<html><body>{markup}</body></html>", _parser())
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    if document is None:
        return None
    return document.find("body")


# Inside <pre>, markup that a flattened code block must not lose: anything that breaks lines or
# paragraphs, holds media or cells, or is dropped whole.
_STRUCTURE_IN_CODE = tuple(sorted(_BLOCK_TAGS | _NOT_TEXT | _CELL_TAGS | _DROP_WITH_CONTENT))


def _flatten_code(root: etree._Element) -> None:
    """Reduce each code block (<pre>) to its plain text, keeping one <code> wrapper when it had one.

    Syntax highlighters wrap every token in a <span class>, nearly half the elements of this
    project's feed corpus. The sanitizer drops those classes, so the spans show nothing, yet every
    later pass would walk them. Blocks holding line breaks, blocks, media or cells keep their markup,
    so the text and paragraphs come out the same either way.
    """
    for pre in list(root.iter("pre")):
        if len(pre) == 0 or next(pre.iterdescendants(*_STRUCTURE_IN_CODE), None) is not None:
            continue
        holder = pre
        only = pre[0]
        if len(pre) == 1 and only.tag == "code" and not (pre.text or "").strip() and not (only.tail or "").strip():
            holder, pre.text, only.tail = only, None, None
        text = element_text(holder)
        del holder[:]
        holder.text = text


def _prepare(
    root: etree._Element, base_url: str | None, lead_image: str | None = None, lead_from_body: bool = False
) -> list[ContentImage]:
    found: list[tuple[etree._Element, ContentImage]] = []
    doomed: list[etree._Element] = []
    # Filtering by tag in lxml hands Python only the elements acted on, not every <span>.
    for element in root.iter(*_PREPARED_NODES):
        tag = element.tag
        if not isinstance(tag, str):  # comments and processing instructions
            doomed.append(element)
            continue
        if tag in _DROP_WITH_CONTENT or (
            tag == "iframe" and not _is_video_embed(_join(base_url, element.get("src") or ""))
        ):
            doomed.append(element)
        elif tag == "img":
            _fix_lazy_image(element)
            src = _join(base_url, element.get("src") or "")
            if not src or src.startswith("data:") or _is_tracking_pixel(element, src):
                doomed.append(element)
            else:
                element.set("src", src)
                found.append((element, ContentImage(url=src, caption=_figure_caption(element))))
    for element in doomed:
        _drop(element)
    _flatten_code(root)
    for element in boilerplate_elements(root):
        _drop(element)
    # lxml hands back the same proxy object for a node while we hold it, so identity works here.
    kept = {id(img) for img in root.iter("img")}
    found = [(element, image) for element, image in found if id(element) in kept]
    if lead_image is not None or lead_from_body:
        _drop_lead_copies(root, found, lead_image)
    # Removing a block can leave its wrapper empty (<p><iframe/></p>); drop shells with nothing to show.
    empty = [
        element
        for element in root.iter("p", "div", "span", "li", "figure", "blockquote", "section")
        if len(element) == 0 and not (element.text or "").strip()
    ]
    for element in empty:
        _drop(element)
    for element in root.iter(*_URL_TAGS):
        for name in _URL_ATTRIBUTES:
            value = element.get(name)
            if value is not None:
                joined = _join(base_url, value)
                # Browsers ignore tabs and newlines inside a scheme ("jav\tascript:"); so do we, and
                # keep only web and mail links. nh3 checks schemes too; this is the belt to its braces.
                scheme = _SCHEME.match(_URL_NOISE.sub("", joined))
                if scheme and scheme.group(1).lower() not in ("http", "https", "mailto"):
                    del element.attrib[name]
                else:
                    element.set(name, joined)
    # The lead picture's copies left the markup but stay listed: the lead image and its caption come from them.
    return [image for _element, image in found]


def _drop_lead_copies(
    root: etree._Element, found: list[tuple[etree._Element, ContentImage]], lead_image: str | None
) -> None:
    """Remove from the body every copy of the lead picture, which the article shows above the text.

    The lead is ``lead_image`` (the feed's media:content, ...), else the body's first web image.
    Copies are recognised by urls.image_key, so ?w=1024&utm_source=rss or a -1024x683 rendition of the
    same file is the same picture; its <figure> goes with it (the caption is the lead image's).
    """
    if lead_image is None:
        lead_image = next((image.url for _e, image in found if is_http_url(canonical_url(image.url))), None)
        if lead_image is None:
            return
    key = image_key(lead_image)
    copies = [element for element, image in found if image_key(image.url) == key]
    for element in copies:
        _drop(_picture_block(element, root, key))


def _picture_block(img: etree._Element, root: etree._Element, key: str) -> etree._Element:
    """Return the element that holds nothing but this picture: its <figure>, a wrapping link or paragraph, or itself."""
    for figure in img.iterancestors("figure"):
        if all(image_key(other.get("src") or "") == key for other in figure.iter("img")):
            return figure
        break
    node = img
    while (parent := node.getparent()) is not None and parent is not root:
        if parent.tag not in ("a", "picture", "p", "div", "span") or len(parent) != 1:
            break
        if (parent.text or "").strip() or (node.tail or "").strip():
            break
        node = parent
    return node


def _drop(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    # Keep the text that follows the element (its tail): it belongs to the parent.
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _serialize(root: etree._Element) -> str:
    # One call serializes the whole <body>; its inner HTML lies between the first ">" and the last
    # "</" (its own start tag cannot hold a ">": lxml escapes it in attribute values).
    markup: str = etree.tostring(root, method="html", encoding="unicode", with_tail=False)
    return markup[markup.index(">") + 1 : markup.rindex("</")]


def _paragraphs(root: etree._Element) -> list[str]:
    # Walking every node in Python costs more than everything else here, so mark where paragraphs
    # break right in the tree (a private-use character at the start and end of each block), drop
    # what is not running text, and let libxml2 gather the text in one call. The tree is spent
    # afterwards; bodies whose text already holds the marker take the node-by-node walk instead.
    if _HAS_BREAK(root):
        return _paragraphs_walk(root)
    for element in list(root.iter(*_NOT_TEXT)):
        element.text = None
        del element[:]
    for element in list(root.iter(*_BLOCK_TAGS)):
        element.text = _BREAK + (element.text or "")
        if element is not root:
            element.tail = _BREAK + (element.tail or "")
    for element in list(root.iter(*_CELL_TAGS)):
        element.tail = " " + (element.tail or "")
    text = element_text(root)
    return clean_paragraphs([line for chunk in text.split(_BREAK) if (line := clean_line(chunk))])


def _paragraphs_walk(root: etree._Element) -> list[str]:
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            text = clean_line("".join(buffer))
            if text:
                paragraphs.append(text)
            buffer.clear()

    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag
        if event == "start":
            if tag in _BLOCK_TAGS:
                flush()
            if tag in _NOT_TEXT:
                walker.skip_subtree()
            elif element.text:
                buffer.append(element.text)
        else:
            if tag in _BLOCK_TAGS:
                flush()
            elif tag in _CELL_TAGS:
                buffer.append(" ")
            if element.tail and element is not root:
                buffer.append(element.tail)
    flush()
    return clean_paragraphs(paragraphs)


def sanitize_markup(markup: str) -> str:
    """Return ``markup`` through the nh3 allowlist only (no boilerplate removal)."""
    cleaner = _IFRAME_CLEANER if "<iframe" in markup.lower() else _CLEANER
    return cleaner.clean(markup)


def clean_content(
    markup: str, base_url: str | None = None, *, lead_image: str | None = None, lead_from_body: bool = False
) -> CleanContent:
    """Return the sanitized HTML, text paragraphs and images of an HTML body, boilerplate removed.

    An article page shows its lead image above the text; copies of that picture are left out of the
    HTML: copies of ``lead_image``, or with ``lead_from_body`` of the body's first image. ``images``
    still lists them.
    """
    root = _parse(markup)
    if root is None:
        return CleanContent(html="", paragraphs=(), images=())
    images = _prepare(root, base_url, lead_image, lead_from_body)
    return CleanContent(
        html=sanitize_markup(_serialize(root)).strip(),
        paragraphs=tuple(_paragraphs(root)),
        images=tuple(images),
    )


def sanitize_html(html: str, base_url: str | None = None) -> str:
    """Return display-safe HTML: allowlisted markup, absolute URLs, real lazy images, no pixels or boilerplate."""
    return clean_content(html, base_url).html


def html_to_text(html: str, base_url: str | None = None) -> str:
    """Return the plain text of an HTML body: paragraphs and headings separated by blank lines, boilerplate removed."""
    return clean_content(html, base_url).text
