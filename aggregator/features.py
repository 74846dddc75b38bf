"""Optional features and whether this installation can provide them.

A feature whose library cannot be imported is off, but never in silence: the reason is logged once
when something first needs it, said at start-up, shown on every feed that asks for it (`newsdesk
feeds list`, `/api/v1/feeds`, `/feeds`) and returned by ``feature_status`` for readiness checks.
Nothing here imports a feature's library until someone asks, so commands that never need it stay quick.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from .models import Feed

log = logging.getLogger("newsdesk.features")


@dataclass(frozen=True)
class Feature:
    """An optional capability that needs one importable module."""

    #: Name used in status reports (the config option's name where there is one).
    name: str
    #: The module that must import for the feature to work.
    module: str
    #: What is lost without it, in plain words.
    without: str
    #: Whether a feed asks for the feature (None: no feed-level switch).
    wanted_by: Callable[[Feed], bool] | None = None


#: Every optional feature; the dependencies in pyproject.toml provide all of them.
FEATURES = (
    Feature(
        "full_content",
        "trafilatura",
        "feeds with full_content = true keep their feed's own text instead of the article page's",
        wanted_by=lambda feed: feed.full_content,
    ),
    Feature("brotli", "brotli", "feeds are fetched without brotli compression (Accept-Encoding: br)"),
)
_BY_NAME = {feature.name: feature for feature in FEATURES}

_lock = threading.Lock()
#: name -> (module, None) once imported, or (None, reason) once the import failed.
_loaded: dict[str, tuple[ModuleType | None, str | None]] = {}


def load(name: str) -> ModuleType | None:
    """Return the module behind feature ``name``, or None when it cannot be imported (the reason logged once)."""
    return _import(name, None)


def _import(name: str, wanting: int | None) -> ModuleType | None:
    """Import feature ``name`` once per process; the first failure is logged with ``wanting`` feeds named."""
    feature = _BY_NAME[name]
    with _lock:  # one import attempt per process; a second thread waits for the first one's answer
        found = _loaded.get(name)
        if found is None:
            try:
                found = (importlib.import_module(feature.module), None)
            except Exception as exc:  # ImportError, or a broken install failing inside the library's import
                reason = " ".join(f"{feature.module} cannot be imported ({type(exc).__name__}: {exc})".split())
                found = (None, reason)
                asking = f" ({wanting} feed(s) ask for it)" if wanting is not None else ""
                log.warning(
                    "optional feature %s is unavailable: %s; %s%s; reinstall Newsdesk's dependencies "
                    "(pip install .) to restore it",
                    name,
                    reason,
                    feature.without,
                    asking,
                )
            _loaded[name] = found
    return found[0]


def unavailable_reason(name: str) -> str | None:
    """Return why feature ``name`` is unavailable in this installation, or None when it works."""
    load(name)
    return _loaded[name][1]


def feature_status() -> dict[str, str | None]:
    """Return every optional feature's name mapped to why it is unavailable, or None when it is available."""
    return {feature.name: unavailable_reason(feature.name) for feature in FEATURES}


def feed_warnings(feed: Feed) -> tuple[str, ...]:
    """Return, in plain words, what ``feed`` asks for that this installation cannot do (empty when nothing)."""
    warnings = []
    for feature in FEATURES:
        if feature.wanted_by is not None and feature.wanted_by(feed):
            reason = unavailable_reason(feature.name)
            if reason:
                warnings.append(f"{feature.name} is on but unavailable ({reason}): {feature.without}")
    return tuple(warnings)


def check_features(feeds: Iterable[Feed]) -> dict[str, str | None]:
    """Return ``feature_status()``, logging each unavailable feature once with how many of ``feeds`` ask for it."""
    feeds = list(feeds)
    for feature in FEATURES:
        wanting = None if feature.wanted_by is None else sum(1 for feed in feeds if feature.wanted_by(feed))
        _import(feature.name, wanting)
    return feature_status()
