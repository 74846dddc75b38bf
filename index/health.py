"""Reading a whole index back to tell whether it is sound (ids once each), and naming what went wrong."""

from __future__ import annotations

from typing import Any


def describe(exc: BaseException) -> str:
    """Return an exception as one short line: its type and the start of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def check_documents(reader: Any) -> tuple[str | None, int]:
    """Read every live document's id; return a problem (an id indexed twice) or None, and the document count."""
    seen: set[str] = set()
    count = 0
    for leaf, _offset in reader.leaf_readers():
        if leaf.doc_count_all() == 0:
            continue
        if leaf.has_column("id"):
            ids = leaf.column_reader("id", translate=True)
            live = (ids[n] for n in range(leaf.doc_count_all()) if not leaf.is_deleted(n))
        else:  # an index written before the id column existed
            live = (fields["id"] for _n, fields in leaf.iter_docs())
        for entry_id in live:
            if entry_id in seen:
                return f"entry {entry_id} is indexed twice", count
            seen.add(entry_id)
            count += 1
    return None, count
