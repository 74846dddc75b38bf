"""Plain-text cleaning: entities decoded, stray tags removed, whitespace collapsed, boilerplate recognized."""

from __future__ import annotations

import html
import re

# A complete tag, comment, doctype or processing instruction; or an unterminated tag name at
# the very end (a title cut in the middle of "</script").
_TAG = re.compile(r"<(?:[A-Za-z][^<>]*|/[A-Za-z][^<>]*|![^<>]*|\?[^<>]*)>|</?[A-Za-z][A-Za-z0-9:-]*\s*$")
# Zero-width and formatting characters that hide between letters and break matching; and control
# characters (C0 but tab and line breaks, DEL, C1), lone surrogates and noncharacters, which no XML
# document may carry (lxml refuses them: /search.atom answered 500) and which a terminal obeys
# (an ESC in a title could clear the operator's screen).
_INVISIBLE_CHARACTERS = (
    "\u00ad\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
)
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARACTERS}]")
# Anything strip_markup would change; text without these characters is returned untouched (fast path).
_NEEDS_STRIPPING = re.compile(f"[<&{_INVISIBLE_CHARACTERS}]")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_SPACE = re.compile(r"\s+")
# Possessive quantifiers: the same matches (nothing after a word run can make it give characters
# back), without the regex engine keeping backtracking points; findall runs on every text.
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]++(?:['’][^\W_]++)*+")
# "[…]" / "[...]" that WordPress appends to cut excerpts.
_EXCERPT_MARK = re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;|&#8230;)\s*\]\s*$")
_READ_MORE_MARKERS = (
    "read",
    "continu",
    "weiter",
    "lire",
    "leer",
    "segui",
    "leggi",
    "leia",
    "lees",
    "czytaj",
    "читать",
    "続き",
)
# One search for any marker: the same test as any(marker in text ...), without a Python step per marker.
_READ_MORE_HINT = re.compile("|".join(map(re.escape, _READ_MORE_MARKERS)))
_TRAILING_READ_MORE = re.compile(
    r"\s*(?:…|\.\.\.)?\s*(?:continue reading|read more|keep reading|read the full (?:story|article|post)|weiterlesen"
    r"|lire la suite|leer más|seguir leyendo|continua a leggere|leggi tutto|leia mais|lees verder|czytaj dalej"
    r"|читать далее|続きを読む)[^.!?]{0,120}$",
    re.IGNORECASE,
)

# Whole paragraphs that are never part of an article, wherever a site puts them. Each pattern is
# anchored and length-bounded so that a real sentence that merely mentions the words survives.
_BOILERPLATE = re.compile(
    r"""^(?:
      (?:the|this)\ (?:post|article|story|entry)\ .{1,400}?\ (?:appeared\ first|first\ appeared|was\ first\ published
        |was\ originally\ published|originally\ appeared|was\ originally\ posted)\ (?:on|at|in)\ .{1,200}
    | (?:continue\ reading|read\ more|keep\ reading|read\ the\ (?:full|rest\ of\ the)\ (?:story|article|post)
        |click\ here\ to\ read\ more|weiterlesen|mehr\ lesen|lire\ la\ suite|leer\ más|seguir\ leyendo
        |continua\ a\ leggere|leggi\ tutto|leia\ mais|lees\ verder|czytaj\ dalej|читать\ далее|続きを読む).{0,150}
    | share\ (?:this|on|via|the)\b.{0,200}
    | (?:follow|like)\ us\ on\b.{0,150}
    | (?:sign\ up|subscribe)\b.{0,200}
    | (?:get|receive)\ (?:our|the)\ .{0,60}newsletter.{0,150}
    | (?:please\ )?(?:consider\ )?(?:support(?:ing)?\ (?:us|our|independent|quality)\b|donate\b|make\ a\ donation
        |become\ a\ (?:member|patron|subscriber|supporter)\b).{0,250}
    | let\ your\ voice\ be\ heard\b.{0,100}
    | .{0,200}\b(?:protected\ by\ recaptcha|recaptcha\ and\ the\ google|we\ use\ cookies|this\ (?:site|website)\ uses\ cookies
        |by\ continuing\ to\ (?:use|browse)\ (?:this|our)\ (?:site|website)|accept\ (?:all\ )?cookies)\b.{0,250}
    | advertisement|sponsored\ content|related\ (?:coverage|articles?|posts?|stories|content)\s*:?
    | (?:related|see\ also|read\ also|more\ from\ .{1,60}|you\ (?:may|might)\ also\ like)\s*:?
    )$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)

# Cheap necessary conditions for _BOILERPLATE, tried first because most paragraphs are article text.
# Every alternative but the cookie/reCAPTCHA one starts with one of these words (same flags, so
# the same case folding) ...
_BOILERPLATE_START = re.compile(
    r"th|continu|read|keep|click|weiter|mehr|lire|leer|segui|leggi|leia|lees|czytaj|читать|続き|share|follow|like"
    r"|sign|subscri|get|receive|please|consider|support|donat|make|become|let|advertis|sponsor|related|see|more|you",
    re.IGNORECASE,
)
# ... and that one puts its phrase within the first 200 characters, so one of these substrings shows
# in the lower-cased first 240. They avoid "i" and "s", whose IGNORECASE matches ("ı", "İ", "ſ")
# lower() does not map to them.
_BOILERPLATE_ANYWHERE = ("recapt", "cook", "by cont")
_BOILERPLATE_ANYWHERE_HINT = re.compile("|".join(map(re.escape, _BOILERPLATE_ANYWHERE)))


def strip_markup(value: str) -> str:
    """Return ``value`` with entities decoded and tags removed until none are left (whitespace untouched)."""
    if _NEEDS_STRIPPING.search(value) is None:
        return value
    # Loop to a fixed point: "&amp;lt;b&amp;gt;" hides a tag behind two rounds of escaping, and
    # every round that changes anything makes the string shorter, so the loop ends.
    while True:
        decoded = _TAG.sub(" ", _INVISIBLE.sub("", html.unescape(_INVISIBLE.sub("", value))))
        if decoded == value:
            return value
        value = decoded


# Markup in a feed's title: comments, declarations, and tags of HTML (also SVG and MathML roots)
# elements or with attributes. Elements whose content is code are dropped with their content.
_HTML_ELEMENTS = (
    "a|abbr|address|applet|area|article|aside|audio|b|base|basefont|bdi|bdo|big|blink|blockquote|body|br"
    "|button|canvas|caption|center|cite|code|col|colgroup|data|datalist|dd|del|details|dfn|dialog|dir|div|dl"
    "|dt|em|embed|fieldset|figcaption|figure|font|footer|form|frame|frameset|h[1-6]|head|header|hgroup|hr"
    "|html|i|iframe|img|image|input|ins|isindex|kbd|keygen|label|legend|li|link|listing|main|map|mark"
    "|marquee|math|menu|meta|meter|nav|nobr|noembed|noframes|noscript|object|ol|optgroup|option|output|p"
    "|param|picture|plaintext|pre|progress|q|rp|rt|ruby|s|samp|script|search|section|select|slot|small"
    "|source|span|strike|strong|style|sub|summary|sup|svg|table|tbody|td|template|textarea|tfoot|th|thead"
    "|time|title|tr|track|tt|u|ul|var|video|wbr|xmp"
)
_TITLE_MARKUP = re.compile(
    rf"<!--.*?(?:-->|$)|<![^<>]*>|<\?[^<>]*>|</?(?:{_HTML_ELEMENTS})(?=[\s/>])[^<>]*(?:>|$)"
    r"|</?[A-Za-z][\w:.-]*(?:\s+[^<>]*|\s*/)>",
    re.IGNORECASE | re.DOTALL,
)
_TITLE_CODE = re.compile(
    r"<(script|style|template|noscript|iframe|object|svg|math|xmp)\b[^>]*>.*?(?:</\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)


def clean_title(value: str | None) -> str:
    """Return a feed's title as one line of plain text: entities decoded, HTML markup and control characters gone.

    Unlike ``clean_line``, angle brackets that are not HTML stay: "Good <News>" is a title, not a tag.
    """
    if not value:
        return ""
    # To a fixed point, as strip_markup: "&amp;lt;script&amp;gt;" hides a tag behind two escapes.
    while True:
        decoded = _INVISIBLE.sub("", html.unescape(value))
        decoded = _TITLE_MARKUP.sub(" ", _TITLE_CODE.sub(" ", decoded))
        if decoded == value:
            break
        value = decoded
    return " ".join(value.split())


def clean_text(value: str | None) -> str:
    """Return plain text: no tags or entities, paragraphs separated by one blank line, spaces collapsed."""
    if not value:
        return ""
    value = strip_markup(value.replace("\r\n", "\n").replace("\r", "\n"))
    paragraphs = (_SPACE.sub(" ", part).strip() for part in _PARAGRAPH_BREAK.split(value))
    return "\n\n".join(p for p in paragraphs if p)


def clean_line(value: str | None) -> str:
    """Return ``value`` as one line of plain text (titles, names, tags, captions)."""
    if not value:
        return ""
    # str.split() and the regex's \s agree on what whitespace is (both use Py_UNICODE_ISSPACE),
    # and splitting is several times cheaper than a substitution; this runs on every text node.
    return " ".join(strip_markup(value).split())


def is_boilerplate(paragraph: str) -> bool:
    """Return True when a whole paragraph is a share/newsletter/donation/"appeared first" style notice."""
    if len(paragraph) >= 700:
        return False
    paragraph = paragraph.strip()
    if _BOILERPLATE_START.match(paragraph) is None:
        head = paragraph[:240].lower()
        if _BOILERPLATE_ANYWHERE_HINT.search(head) is None:
            return False
    return _BOILERPLATE.match(paragraph) is not None


# For is_boilerplate_raw, the same markers as found in text whose whitespace is not yet collapsed:
# those without a space as plain substrings, those with one as a pattern allowing any whitespace.
_RAW_ANYWHERE_WORDS = tuple(marker for marker in _BOILERPLATE_ANYWHERE if " " not in marker)
_RAW_ANYWHERE_PHRASES = re.compile(
    "|".join(re.escape(marker).replace(r"\ ", r"\s+") for marker in _BOILERPLATE_ANYWHERE if " " in marker)
)


def is_boilerplate_raw(raw: str) -> bool:
    """Return ``is_boilerplate`` of ``raw`` with its whitespace collapsed, testing cheap conditions first.

    Collapsing whitespace first is what costs; most text fails a test that needs no collapsing:
    the collapsed text starts with the raw text's first word, and every phrase the patterns look
    for anywhere survives in the raw text with its spaces widened.
    """
    if not raw:
        return False
    if _BOILERPLATE_START.match(raw.lstrip()) is None:
        # Substring tests on the lower-cased text, as is_boilerplate does: far cheaper than a
        # case-insensitive regex search.
        lowered = raw.lower()
        if not any(word in lowered for word in _RAW_ANYWHERE_WORDS) and _RAW_ANYWHERE_PHRASES.search(lowered) is None:
            return False
    text = " ".join(raw.split())
    return bool(text) and is_boilerplate(text)


def trim_paragraph(paragraph: str) -> str:
    """Return a paragraph without a trailing "[…]" excerpt mark or "Continue reading" link text."""
    # Cheap tests first: these run on every paragraph of every entry.
    if paragraph.endswith("]"):
        paragraph = _EXCERPT_MARK.sub("", paragraph)
    if len(paragraph) > 40:
        tail = paragraph[-160:]
        lowered = tail.lower()
        if _READ_MORE_HINT.search(lowered) is not None:
            paragraph = paragraph[: len(paragraph) - len(tail)] + _TRAILING_READ_MORE.sub("", tail)
    return paragraph.strip()


def clean_paragraphs(paragraphs: list[str]) -> list[str]:
    """Return the paragraphs that are article text, each trimmed, boilerplate and empties dropped."""
    kept: list[str] = []
    for raw in paragraphs:
        paragraph = trim_paragraph(raw)
        if paragraph and not is_boilerplate(paragraph):
            kept.append(paragraph)
    return kept


def truncate(text: str, limit: int = 300) -> str:
    """Return ``text`` on one line, at most ``limit`` characters, cut at a word boundary with "…"."""
    # Only the first ``limit`` characters survive, so collapse a prefix rather than a whole article.
    # The prefix's last word may be cut and is left out; the rest reads exactly like the start of
    # the whole text collapsed, and stands for it when it is longer than ``limit``.
    head = text[: limit * 4]
    prefix = " ".join(head.split()[:-1]) if len(head) < len(text) else ""
    text = prefix if len(prefix) > limit else " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def count_words(text: str) -> int:
    """Return the number of words in ``text``, counting each CJK character as a word."""
    return len(_WORD.findall(text))


def words(text: str) -> list[str]:
    """Return the lower-cased words of ``text`` (CJK characters one by one)."""
    return _WORD.findall(text.lower())


def words_and_count(text: str) -> tuple[list[str], int]:
    """Return ``words(text)`` and ``count_words(text)``, finding the words once when that gives both."""
    lowered = text.lower()
    tokens = _WORD.findall(lowered)
    if len(lowered) == len(text):
        # Where lower() maps each character to one character (all but "İ"), it keeps every
        # character in or out of the word classes (checked over all of Unicode), so the lower-cased
        # text has exactly as many words as the text itself.
        return tokens, len(tokens)
    return tokens, count_words(text)
