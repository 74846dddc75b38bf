"""The records the fetcher and the polling policy take, built from the ``[polling]`` table of a Config.

``FetchLimits`` and ``PollingPolicy`` name their fields after the ``[polling]`` keys they come from,
so one mapping builds either: a key added to both the record and the table needs no code here.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from .config import Config
from .fetch import FetchLimits
from .policy import PollingPolicy

_Options = TypeVar("_Options", FetchLimits, PollingPolicy)


def _from_polling(config: Config, kind: type[_Options]) -> _Options:
    return kind(**{field.name: getattr(config.polling, field.name) for field in dataclasses.fields(kind)})


def limits_from_config(config: Config) -> FetchLimits:
    """Return the fetch limits the configuration asks for."""
    return _from_polling(config, FetchLimits)


def policy_from_config(config: Config) -> PollingPolicy:
    """Return the polling policy the configuration asks for."""
    return _from_polling(config, PollingPolicy)
