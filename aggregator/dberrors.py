"""One-line descriptions of database errors, for log lines and messages an operator reads."""

from __future__ import annotations


def driver_message(exc: BaseException) -> str:
    """Return the driver's own message of a (SQLAlchemy-wrapped) database error, on one line.

    SQLAlchemy's text adds the statement, its parameters and a link on further lines; the operator
    needs what the server said ("terminating connection due to administrator command").
    """
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def describe(exc: BaseException) -> str:
    """Return the driver's message of a database error with the driver's error class, on one line."""
    cause = getattr(exc, "orig", None) or exc
    message = driver_message(exc)
    name = type(cause).__name__
    return message if message == name else f"{name}: {message}"
