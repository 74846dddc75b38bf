"""The reader's query language, parsed by hand: never raises, says what it ignored.

Syntax (Google-like, plus Whoosh's field:value): words are ANDed (AND may be typed; it changes
nothing); "exact phrases"; OR (or |) between terms; -excluded or NOT excluded (OR, AND and NOT are
operators only in capitals, as in Google; lower-case they are words); title:, author:, source:/site:,
tag:, lang:; after:DATE, before:DATE, date:"past week"; word~ (fuzzy, word~2 for two edits); word* (prefix).

tag: matches a whole tag, whatever its case, commas and spacing (tag:"trump, donald j" and
tag:"Trump Donald J" match the feed's "Trump, Donald J"); one word of it (tag:trump) does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

#: Field names readers may type, mapped to what they filter or search.
FIELD_ALIASES = {
    "title": "title",
    "intitle": "title",
    "author": "author",
    "by": "author",
    "source": "source",
    "site": "source",
    "from": "source",
    "tag": "tag",
    "tags": "tag",
    "category": "tag",
    "lang": "lang",
    "language": "lang",
    "after": "after",
    "since": "after",
    "before": "before",
    "until": "before",
    "date": "date",
}

#: Language names readers type, mapped to the ISO 639-1 codes the index holds.
LANGUAGE_NAMES = {
    "english": "en",
    "french": "fr",
    "francais": "fr",
    "français": "fr",
    "german": "de",
    "deutsch": "de",
    "spanish": "es",
    "espanol": "es",
    "español": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "russian": "ru",
    "arabic": "ar",
    "chinese": "zh",
    "japanese": "ja",
}

#: The orders results can come in (here rather than in index.search so the CLI can offer them without Whoosh).
SORTS = ("relevance", "newest", "oldest")
#: Largest page size anyone may ask for.
MAX_PER_PAGE = 100

_RELATIVE = {
    "today": timedelta(days=1),
    "past day": timedelta(days=1),
    "past 24 hours": timedelta(days=1),
    "past week": timedelta(days=7),
    "past month": timedelta(days=31),
    "past year": timedelta(days=366),
}
_PAST_N = re.compile(r"^(?:past|last)\s+(\d{1,4})\s+(hour|day|week|month|year)s?$")
_UNIT = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
_UNIT |= {"month": timedelta(days=31), "year": timedelta(days=366)}
#: Longest query text parsed at all, whatever search.max_query_length says (a ceiling for that setting).
LONGEST_QUERY = 10_000
_TOKEN = re.compile(r'\s*(-?)(?:([A-Za-z]+):)?("[^"]*"?|\S+)')
_FUZZY = re.compile(r"^(.+?)~([12]?)$")


@dataclass(frozen=True)
class Term:
    """One thing to look for: a word or a phrase, maybe limited to a field."""

    #: The text as typed (without quotes, field prefix, ~ or *).
    text: str
    #: True for "a quoted phrase".
    phrase: bool = False
    #: None (title, summary and text), "title" or "author".
    field: str | None = None
    #: Edits allowed for word~ (0: exact).
    fuzzy: int = 0
    #: True for word* (prefix match).
    prefix: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """What a query string asks for, ready to turn into Whoosh queries."""

    #: Positive clauses: every group must match; a group matches when any of its terms does.
    groups: tuple[tuple[Term, ...], ...] = ()
    #: Terms a result must not match.
    excluded: tuple[Term, ...] = ()
    #: source:/site: values (words of the outlet title or its host).
    sources: tuple[str, ...] = ()
    #: tag: values, lower-cased.
    tags: tuple[str, ...] = ()
    #: lang: values as ISO 639-1 codes.
    languages: tuple[str, ...] = ()
    #: Only results published at or after this instant (UTC).
    after: datetime | None = None
    #: Only results published before this instant (UTC).
    before: datetime | None = None
    #: What was ignored or reinterpreted, in words for the reader.
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_terms(self) -> bool:
        """Return True when the query has something to rank by (not filters alone)."""
        return bool(self.groups)

    @property
    def is_empty(self) -> bool:
        """Return True when the query neither searches nor filters anything."""
        return not (self.groups or self.excluded or self.sources or self.tags or self.languages) and (
            self.after is None and self.before is None
        )

    def words(self) -> list[str]:
        """Return the plain words searched everywhere (for "did you mean")."""
        return [t.text for group in self.groups for t in group if t.field is None and not t.phrase and not t.fuzzy]

    def as_any(self) -> ParsedQuery:
        """Return the same query with every positive term optional (the zero-result OR retry)."""
        terms = tuple(t for group in self.groups for t in group)
        return replace(self, groups=(terms,) if terms else ())


def parse_query_date(text: str, *, end: bool = False) -> datetime | None:
    """Return the UTC instant a date like 2019-12-01, 2019-12 or 2019 starts (or ends, with end=True)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
            year, month, day = (int(p) for p in text.split("-"))
            start = datetime(year, month, day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        if re.fullmatch(r"\d{4}-\d{1,2}", text):
            year, month = (int(p) for p in text.split("-"))
            start = datetime(year, month, 1, tzinfo=UTC)
            if not end:
                return start
            return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}", text):
            year = int(text)
            return datetime(year + 1 if end else year, 1, 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})?", text):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return None


def relative_range(text: str, now: datetime) -> datetime | None:
    """Return the start of a relative range like "past week" or "last 3 days", or None."""
    text = " ".join(text.lower().split())
    if text in _RELATIVE:
        if text == "today":
            return datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
        return now - _RELATIVE[text]
    match = _PAST_N.match(text)
    if match:
        try:
            return now - _UNIT[match.group(2)] * int(match.group(1))
        except OverflowError:
            return None
    return None


def _bare(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value.startswith('"') and value.endswith('"') else value.strip('"')


class _Builder:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.groups: list[list[Term]] = []
        self.excluded: list[Term] = []
        self.sources: list[str] = []
        self.tags: list[str] = []
        self.languages: list[str] = []
        self.after: datetime | None = None
        self.before: datetime | None = None
        self.notices: list[str] = []
        self.pending_or = False
        self.pending_not = False

    def note(self, message: str) -> None:
        if message not in self.notices:
            self.notices.append(message)

    def add_term(self, term: Term, negated: bool) -> None:
        if negated:
            self.excluded.append(term)
            self.pending_or = False
        elif self.pending_or and self.groups:
            self.groups[-1].append(term)
        else:
            self.groups.append([term])
        self.pending_or = False

    def add_field(self, name: str, raw: str, negated: bool, typed: str) -> None:
        value = _bare(raw).strip()
        if not value:
            self.note(f"ignored “{typed}:” with nothing after it")
            return
        if name == "title":
            self.add_word(raw, negated, field="title")  # title:word~ and title:word* work as they do bare
            return
        if name == "author":
            self.add_term(Term(text=value, phrase=raw.startswith('"'), field=name), negated)
            return
        if negated:
            self.note(f"ignored “-{typed}:{raw}”: only words and phrases can be excluded")
            return
        if name == "source":
            self.sources.append(value)
        elif name == "tag":
            self.tags.append(value.lower())
        elif name == "lang":
            code = LANGUAGE_NAMES.get(value.lower(), value.lower())
            if re.fullmatch(r"[a-z]{2,3}", code):
                self.languages.append(code)
            else:
                self.note(f"ignored “{typed}:{raw}”: languages are two-letter codes such as en, fr, de")
        elif name in ("after", "before"):
            when = parse_query_date(value, end=name == "before") or relative_range(value, self.now)
            if when is None:
                self.note(f"ignored “{typed}:{raw}”: dates look like 2019-12-01, 2019-12 or 2019")
            elif name == "after":
                self.after = max(self.after, when) if self.after else when
            else:
                self.before = min(self.before, when) if self.before else when
        elif name == "date":
            start = relative_range(value, self.now)
            if start is not None:
                self.after = max(self.after, start) if self.after else start
                return
            start, end = parse_query_date(value), parse_query_date(value, end=True)
            if start is None or end is None:
                self.note(f'ignored “{typed}:{raw}”: try date:"past week", date:today or date:2024-05')
                return
            self.after = max(self.after, start) if self.after else start
            self.before = min(self.before, end) if self.before else end

    def add_word(self, raw: str, negated: bool, field: str | None = None) -> None:
        if raw.startswith('"'):
            if not raw.endswith('"') or len(raw) == 1:
                self.note("a quotation mark was not closed; searched the rest as a phrase")
            text = _bare(raw).strip()
            if text:
                self.add_term(Term(text=text, phrase=True, field=field), negated)
            return
        fuzzy = 0
        prefix = False
        match = _FUZZY.match(raw)
        if match:
            raw, fuzzy = match.group(1), int(match.group(2) or 1)
        if raw.endswith("*") and len(raw.rstrip("*")) >= 2:
            raw, prefix = raw.rstrip("*"), True
        cleaned = re.sub(r"[^\w.'’-]+", " ", raw).strip(" .'’-")
        if cleaned != raw and cleaned:
            self.note(f"searched “{raw}” as “{cleaned}”")
        for part in cleaned.split():
            self.add_term(Term(text=part, fuzzy=fuzzy, prefix=prefix, field=field), negated)


def parse_query(text: str, *, now: datetime | None = None) -> ParsedQuery:
    """Return what ``text`` asks for; unknown or malformed parts are searched as words or ignored, with a notice."""
    now = now or datetime.now(UTC)
    builder = _Builder(now)
    text = text.replace("\x00", " ")[:LONGEST_QUERY]
    if "(" in text or ")" in text:
        builder.note("parentheses are not supported and were ignored")
        text = text.replace("(", " ").replace(")", " ")
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        negated, name, value = match.group(1) == "-", match.group(2), match.group(3)
        if name is None and not negated and value == "NOT":
            # Read as written ("trump NOT iran" excludes iran), never searched as the word "not".
            builder.pending_not = True
            continue
        negated = negated or builder.pending_not
        builder.pending_not = False
        if name is None and not negated and value in ("OR", "|"):
            if not builder.groups or builder.pending_or:
                builder.note("ignored an OR with nothing before it")
            else:
                builder.pending_or = True
            continue
        if name is None and not negated and value == "AND":
            continue  # AND is the default
        if name is None and value.endswith(":") and value[:-1].lower() in FIELD_ALIASES:
            # "lang:" at the end, or "title: harbour" with a space: a filter with nothing after it, not a word.
            builder.note(f"ignored “{value}” with nothing after it; searched the rest as words")
            continue
        if name is not None:
            canonical = FIELD_ALIASES.get(name.lower())
            if canonical is None:
                builder.note(f"“{name}:” is not a filter we know; searched “{name} {_bare(value)}” as words")
                builder.add_word(name, negated)
                builder.add_word(value, negated)
            else:
                builder.add_field(canonical, value, negated, name)
            continue
        if value == "-":
            continue
        builder.add_word(value, negated)
    if builder.pending_or:
        builder.note("ignored an OR with nothing after it")
    if builder.pending_not:
        builder.note("ignored a NOT with nothing after it")
    if builder.after and builder.before and builder.after >= builder.before:
        builder.note("the date range is empty (the start is not before the end)")
    return ParsedQuery(
        groups=tuple(tuple(g) for g in builder.groups),
        excluded=tuple(builder.excluded),
        sources=tuple(builder.sources),
        tags=tuple(builder.tags),
        languages=tuple(builder.languages),
        after=builder.after,
        before=builder.before,
        notices=tuple(builder.notices),
    )


def day_start(value: date) -> datetime:
    """Return midnight UTC at the start of a calendar day."""
    return datetime(value.year, value.month, value.day, tzinfo=UTC)
