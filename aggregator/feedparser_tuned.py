"""feedparser's own parser classes, run faster and with our media:description handling; feedparser is never changed.

Nothing here patches feedparser: importing this module (or any other of ours) leaves every feedparser
module global and class attribute as it was (tests/test_architecture.py checks it in a fresh
interpreter), so a plain ``feedparser.parse`` elsewhere in the process behaves as documented.
Instead, ``TUNED`` holds *subclasses* of feedparser's strict and loose parsers whose methods are
feedparser's own code objects, re-bound to a private copy of their module's globals in which a few
names point at faster equivalents (``_tuned_globals`` lists them). Nothing is shared with plain
feedparser, so threads parsing both ways at once cannot see each other's choices.

``run_feedparser`` is the part of ``feedparser.api.parse`` that reads bytes already in memory (we
never hand feedparser a URL), with two additions: the entity-expansion budget is checked on the
bytes both parsers read (aggregator/dtd.py says why), and the SAX reader is ours.

Every private feedparser name used here is listed in aggregator/thirdparty.py with the pin that guards it.
"""

from __future__ import annotations

import copy
import functools
import io
import sys
import types
import xml.sax
import xml.sax.handler
import xml.sax.xmlreader
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import feedparser.api
import feedparser.html
import feedparser.urls
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype
from feedparser.urls import make_safe_absolute_uri
from feedparser.util import FeedParserDict

from ._expat_buffered import BufferedExpatParser
from .dtd import check_entity_expansion

# feedparser keeps unknown keys in FeedParserDict lookups on a slow path of special cases; these
# are the keys that have one (everything else reads the dict directly in _FastDict).
_SPECIAL_KEYS = frozenset({"category", "enclosures", "license", "updated", "updated_parsed", *FeedParserDict.keymap})


class _FastDict(FeedParserDict):  # type: ignore[misc]  # feedparser has no type hints
    """A FeedParserDict whose lookups of keys with no special case read the dict directly.

    FeedParserDict runs a chain of special cases in Python for every key (about 3,700 lookups per
    feed); keys with no special case and no alias give the same answer from ``dict`` itself.
    """

    def __getitem__(self, key: Any) -> Any:
        if key in _SPECIAL_KEYS:
            return FeedParserDict.__getitem__(self, key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        if key in _SPECIAL_KEYS:
            return FeedParserDict.get(self, key, default)
        return dict.get(self, key, default)


_ATOMIC = frozenset({str, int, float, bool, type(None)})


class _ParamsCopy:
    """Stands in for the copy module inside the tuned parser's methods.

    Every element's end copies the content parameters with copy.deepcopy, through pickle's reduce
    protocol; they only ever hold strings, numbers and None, so a new dict of the same class with
    the same items (set through the class, as deepcopy sets them) is the same copy at a tenth of
    the cost. Anything else goes to copy.deepcopy.
    """

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        """Return a deep copy of ``value``, quickly for flat FeedParserDicts of atoms."""
        kind = type(value)
        if (
            (kind is _FastDict or kind is FeedParserDict)
            and not vars(value)
            and all(type(item) in _ATOMIC for item in dict.values(value))
        ):
            clone = kind()
            for key, item in dict.items(value):
                clone[key] = item
            return clone
        return copy.deepcopy(value, memo)


def _cp1252_table(mapping: Mapping[int, str]) -> list[int | str]:
    """Return ``mapping`` (code point -> text) as a str.translate table indexed by code point.

    With a dict table, each non-ASCII character that is not in it raises and clears a KeyError
    inside CPython; a list answers every BMP character directly (beyond it, IndexError is a
    LookupError and maps the character to itself, as documented for str.translate).
    """
    table: list[int | str] = list(range(0x10000))
    for code, replacement in mapping.items():
        table[code] = replacement
    return table


def _tuned_globals() -> dict[int, Any]:
    """Return the replacements of the tuned parser, keyed by ``id`` of the feedparser object each stands for."""
    # Each replacement changes speed, not output (tests/test_parse_speedups.py compares both ways).
    replacements: list[tuple[Any, Any]] = [
        # Every text field goes through str.translate(cp1252 table): a list is faster than a dict.
        (feedparser.html._cp1252, _cp1252_table(feedparser.html._cp1252)),
        # Every start tag joins the element's xml:base onto the current base through urllib's
        # urljoin, ~20 us a time; the pairs repeat all through a document and both are pure.
        (feedparser.urls._urljoin, functools.lru_cache(maxsize=4096)(feedparser.urls._urljoin)),
        (make_safe_absolute_uri, functools.lru_cache(maxsize=4096)(make_safe_absolute_uri)),
        # deepcopy(contentparams) is the only use of the copy module in the parser's methods
        # (_base's deepcopy(sourcedata) falls through to copy.deepcopy).
        (copy, _ParamsCopy),
        # The dicts the parser builds answer lookups faster.
        (FeedParserDict, _FastDict),
    ]
    return {id(original): replacement for original, replacement in replacements}


_REPLACEMENTS = _tuned_globals()
# One tuned copy of each feedparser module's globals that a copied class's methods run in.
_NAMESPACES: dict[str, dict[str, Any]] = {}
# The tuned copy of each feedparser class that needed one, shared by both parsers (their methods name
# classes in the shared globals above, so there is one copy of each).
_COPIES: dict[type, type] = {}


def _code_names(code: types.CodeType) -> Iterator[str]:
    """Yield the names a code object and the functions nested in it look up."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_names(constant)


def _namespace(module_name: str) -> dict[str, Any]:
    """Return the tuned copy of a feedparser module's globals (made once per module)."""
    found = _NAMESPACES.get(module_name)
    if found is None:
        found = dict(vars(sys.modules[module_name]))
        for name, value in found.items():
            if id(value) in _REPLACEMENTS:
                found[name] = _REPLACEMENTS[id(value)]
            elif isinstance(value, type) and value in _COPIES:
                found[name] = _COPIES[value]  # a class copied before this module's globals were
        _NAMESPACES[module_name] = found
    return found


def _functions(klass: type) -> Iterator[types.FunctionType]:
    """Yield the functions defined in a class's own body (static methods unwrapped)."""
    for value in vars(klass).values():
        function = value.__func__ if isinstance(value, staticmethod) else value
        if isinstance(function, types.FunctionType):
            yield function


def _uses_replacements(klass: type) -> bool:
    """Return whether any function of ``klass``'s own body looks up a global the tuned globals replace."""
    for function in _functions(klass):
        namespace = _namespace(function.__module__)
        if any(
            namespace.get(name) is not function.__globals__.get(name) for name in set(_code_names(function.__code__))
        ):
            return True
    return False


def _rebound(function: types.FunctionType, class_cell: types.CellType) -> types.FunctionType:
    """Return a copy of ``function`` (same code and defaults) that looks its globals up in the tuned copy.

    A method that names ``super`` closes over its class in a ``__class__`` cell; the copy closes over
    ``class_cell`` instead, which the caller fills with the copied class, as the compiler does.
    """
    closure = function.__closure__
    if closure is not None:
        closure = tuple(
            class_cell if name == "__class__" else cell
            for name, cell in zip(function.__code__.co_freevars, closure, strict=True)
        )
    clone = types.FunctionType(
        function.__code__, _namespace(function.__module__), function.__name__, function.__defaults__, closure
    )
    clone.__kwdefaults__ = function.__kwdefaults__
    clone.__qualname__ = function.__qualname__
    clone.__dict__.update(function.__dict__)
    return clone


def _tuned_copy(klass: type) -> type:
    """Return ``klass`` itself, or a copy of it whose methods run in tuned globals when it or a base needs one."""
    if klass in _COPIES:
        return _COPIES[klass]
    if not klass.__module__.startswith("feedparser."):
        return klass
    bases = tuple(_tuned_copy(base) for base in klass.__bases__)
    if bases == klass.__bases__ and not _uses_replacements(klass):
        return klass
    body: dict[str, Any] = {}
    class_cell = types.CellType()
    for name, value in vars(klass).items():
        if name in ("__dict__", "__weakref__"):
            continue  # made anew by type()
        if isinstance(value, staticmethod) and isinstance(value.__func__, types.FunctionType):
            value = staticmethod(_rebound(value.__func__, class_cell))
        elif isinstance(value, types.FunctionType):
            value = _rebound(value, class_cell)
        elif isinstance(value, (dict, list, set)):
            value = copy.copy(value)  # feedparser fills some class-level tables on first use: ours stay ours
        body[name] = value
    tuned = type(klass.__name__, bases, body)
    class_cell.cell_contents = tuned
    _COPIES[klass] = tuned
    # Methods name their own class (``super(_FeedParserMixin, self)``): in the copies' globals, the copy.
    for namespace in _NAMESPACES.values():
        for key, value in namespace.items():
            if value is klass:
                namespace[key] = tuned
    return tuned


# feedparser 6 reads <media:description> as the entry's <description>: it is dropped when the
# item has a description and *becomes the summary* when it has none. We keep it apart instead,
# as "media_description" on the entry and as "description" on the media:content it sits in.
class _MediaDescription:
    """Handlers for <media:description>, looked up by name by feedparser's element dispatch."""

    def _start_media_description(self: Any, attrs_d: dict[str, str]) -> None:
        self.push_content("media_description", attrs_d, "text/plain", 1)

    def _end_media_description(self: Any) -> None:
        value = self.pop_content("media_description")
        media = self._get_context().get("media_content")
        if value and media and "description" not in media[-1]:
            media[-1]["description"] = value


def _parser_class(name: str, base: type, *, tuned: bool) -> type:
    """Return a subclass of feedparser parser ``base`` (or of its tuned copy) with our media:description handlers."""
    if tuned:
        base = _tuned_copy(base)
    return type(name, (_MediaDescription, base), {"__module__": __name__})


@dataclass(frozen=True)
class Machinery:
    """The parts ``run_feedparser`` builds a parse from."""

    #: The strict (SAX) parser class, tried first when the document's encoding is known.
    strict: type
    #: The lenient (sgmllib) parser class, the fallback for documents that are not well-formed XML.
    loose: type
    #: The dict class of the result's outer levels.
    new_dict: type
    #: Returns a new SAX reader for the strict parser.
    sax_reader: Callable[[], xml.sax.xmlreader.XMLReader]


#: feedparser with the speed-ups: what parse_feed runs.
TUNED = Machinery(
    strict=_parser_class("TunedStrictFeedParser", feedparser.api.StrictFeedParser, tuned=True),
    loose=_parser_class("TunedLooseFeedParser", feedparser.api.LooseFeedParser, tuned=True),
    new_dict=_FastDict,
    # Expat with its character data buffered: feedparser's per-text-piece handler runs ~4x less often.
    sax_reader=BufferedExpatParser,
)

#: feedparser's own classes, SAX driver list and dicts, with only our media:description handlers:
#: the reference the speed-ups are checked against (tests/test_parse_speedups.py).
REFERENCE = Machinery(
    strict=_parser_class("ReferenceStrictFeedParser", feedparser.api.StrictFeedParser, tuned=False),
    loose=_parser_class("ReferenceLooseFeedParser", feedparser.api.LooseFeedParser, tuned=False),
    new_dict=FeedParserDict,
    sax_reader=lambda: xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS),
)


def run_feedparser(data: bytes, response_headers: Mapping[str, str], machinery: Machinery = TUNED) -> Any:
    """Return feedparser's result dict for a document in memory, without its sanitizer and relative-URI pass.

    The steps are those of ``feedparser.parse`` for a stream (encoding detection, DOCTYPE rewrite,
    strict parse with the lenient parser as fallback); raises EntityBudgetExceeded before either
    parser reads a document whose entities expand past the budget.
    """
    result = machinery.new_dict(bozo=False, entries=[], feed=machinery.new_dict(), headers={})
    if not data:
        return result
    result["headers"].update(response_headers)
    data = convert_to_utf8(result["headers"], data, result)
    use_strict_parser = bool(result["encoding"])
    check_entity_expansion(data)
    result["version"], data, entities = replace_doctype(data)
    # A base URI only from an absolute URL with an acceptable scheme, as feedparser.parse does.
    content_location = result["headers"].get("content-location", "")
    base_uri = make_safe_absolute_uri("", content_location) or make_safe_absolute_uri(content_location) or ""
    base_language = result["headers"].get("content-language", None)
    parser: Any = None
    if use_strict_parser:
        parser = machinery.strict(base_uri, base_language, "utf-8")
        parser.resolve_relative_uris = False  # normalize resolves URLs and sanitizes (nh3) itself
        parser.sanitize_html = False
        reader = machinery.sax_reader()
        reader.setFeature(xml.sax.handler.feature_namespaces, True)
        try:
            reader.setFeature(xml.sax.handler.feature_external_ges, False)  # never fetch external entities
        except xml.sax.SAXNotSupportedException:
            pass
        reader.setContentHandler(parser)
        reader.setErrorHandler(parser)
        source = xml.sax.xmlreader.InputSource()
        source.setByteStream(io.BytesIO(data))
        try:
            reader.parse(source)
        except xml.sax.SAXException as exc:
            result["bozo"] = 1
            result["bozo_exception"] = parser.exc or exc
            use_strict_parser = False
    if not use_strict_parser:
        parser = machinery.loose(base_uri, base_language, "utf-8", entities)
        parser.resolve_relative_uris = False
        parser.sanitize_html = False
        parser.feed(data.decode("utf-8", "replace"))
    result["feed"] = parser.feeddata
    result["entries"] = parser.entries
    result["version"] = result["version"] or parser.version
    result["namespaces"] = parser.namespaces_in_use
    return result
