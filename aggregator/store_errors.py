"""Database failures become StorageError: one class decorator for the store's public methods, reads included.

Writes already pass through the store's write transaction, which wraps what the database says;
reads open their own connections, and a read that fails (the database file gone, the server down,
a table missing) would otherwise reach the web layer or the CLI as a raw SQLAlchemy error: a 500
and a traceback instead of a 503 and one line.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from .dberrors import driver_message
from .errors import StorageError

StoreClass = TypeVar("StoreClass", bound=type)


# The store's messages name what the database said, without the driver's error class.
describe = driver_message


def _wrapped(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(*args, **kwargs)
            except SQLAlchemyError as exc:
                raise StorageError(f"the database failed ({name}): {describe(exc)}") from exc

        return generator

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise StorageError(f"the database failed ({name}): {describe(exc)}") from exc

    return call


def database_errors(cls: StoreClass) -> StoreClass:
    """Return ``cls`` with each public method of its own body raising StorageError (chained) for a database error."""
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(value):
            setattr(cls, name, _wrapped(name, value))
    return cls
