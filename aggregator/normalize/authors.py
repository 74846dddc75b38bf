"""Author names: bylines reduced to names, e-mail addresses and site suffixes removed."""

from __future__ import annotations

import re

from .limits import AUTHOR, raw_line
from .text import clean_line

# "By", "avatar by" (a theme's avatar alt text glued to the byline), "Posted by", "Written by".
_PREFIX = re.compile(r"^(?:(?:avatar|posted|written|words|story|text|report(?:ed)?)\s+)?by\s*:?\s+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# RSS 2.0 <author> is "email (Name)"; mail headers give "Name <email>".
_EMAIL_WITH_NAME = re.compile(r"^\s*[\w.+-]+@[\w.-]+\s*\((.+)\)\s*$|^\s*(.+?)\s*<[\w.+-]+@[\w.-]+>\s*$")
_SEPARATORS = (" | ", " - ", " – ", " — ", ", ", " / ", " for ", " at ")
# Placeholders that platforms put where no author was given.
_NOT_NAMES = frozenset({"unknown", "noreply", "no-reply", "admin", "administrator", "none", "null", "n/a"})
_SITE_WORDS = re.compile(r"^(?:www\.)?|\.(?:com|org|net|co\.uk|news|info)$|\s+(?:news|staff|team)$", re.IGNORECASE)


def _site_key(value: str) -> str:
    return _SITE_WORDS.sub("", value.strip().lower()).strip()


def clean_author(raw: str, site_names: tuple[str, ...] = ()) -> str | None:
    """Return a display name from one raw author string, or None when it holds no name."""
    name = clean_line(raw_line(raw, AUTHOR))
    if match := _EMAIL_WITH_NAME.match(name):
        name = (match.group(1) or match.group(2) or "").strip()
    name = _EMAIL.sub("", name).strip(" ()<>[],;")
    name = _PREFIX.sub("", name).strip()
    keys = {_site_key(site) for site in site_names if site and site.strip()}
    keys.discard("")
    if keys:
        # Only a suffix that *is* the site's name goes: "Jane Doe | Example News" -> "Jane Doe", while
        # "Reuters and Algemeiner Staff" is one byline and stays as the feed gives it.
        for separator in _SEPARATORS:
            head, found, tail = name.rpartition(separator)
            if found and head.strip() and _site_key(tail) in keys:
                name = head.strip()
                break
    name = name.strip(" -|,;:")
    if not name or name.lower() in _NOT_NAMES or len(name) > AUTHOR:
        return None
    return name


def clean_authors(raws: tuple[str, ...], site_names: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Return the distinct author names of an entry, in feed order."""
    names: list[str] = []
    seen: set[str] = set()
    for raw in raws:
        name = clean_author(raw, site_names)
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name)
    return tuple(names)
