"""Optional features and whether this installation can run them (a missing dependency is said, never hidden)."""

from __future__ import annotations

import functools
import importlib


@functools.cache
def _import_problem(module: str) -> str | None:
    """Return why ``module`` cannot be imported, or None when it can (cached: installs do not change under us)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a dependency failing at import (trafilatura under lxml 6)
        return f"{type(exc).__name__}: {exc}"
    return None


def feature_status() -> dict[str, str | None]:
    """Return each optional feature's name mapped to None when it is available, else the reason it is not."""
    problem = _import_problem("trafilatura")
    return {
        # feeds[].full_content extracts article text with trafilatura, which needs lxml_html_clean under lxml 6.
        "full_content": None
        if problem is None
        else f"full-text extraction needs trafilatura and lxml_html_clean ({problem}); pip install 'trafilatura' 'lxml_html_clean'",
    }
