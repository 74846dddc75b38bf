"""Facet values: the most counted first, equal counts alphabetically, whatever the number of values."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from index.search.facets import FacetValue, _top


def every_value_sorted(counts: np.ndarray, values: list[str], limit: int) -> tuple[FacetValue, ...]:
    """The facet order written out over every value: what `_top` must give however it gets there."""
    ordered = sorted(
        (code for code in range(len(values)) if counts[code] and values[code]), key=lambda c: (-counts[c], values[c])
    )
    return tuple(FacetValue(values[c], int(counts[c]), values[c]) for c in ordered[:limit])


@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), min_size=0, max_size=80),
    limit=st.integers(min_value=1, max_value=15),
    empty_at=st.integers(min_value=0, max_value=100),
)
def test_top_values_are_those_of_sorting_every_value(counts: list[int], limit: int, empty_at: int) -> None:
    # Few distinct counts over many values: the cut falls inside ties most of the time.
    values = [f"source {n:03d}" for n in range(len(counts))]
    if empty_at < len(values):
        values[empty_at] = ""  # an unknown language or source is counted but never shown
    array = np.array(counts, dtype=np.int64)
    assert _top(array, values, limit) == every_value_sorted(array, values, limit)


def test_thousands_of_sources_keep_the_top_ones_in_order() -> None:
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 4, size=9_000)
    counts[[17, 4_000, 8_999]] = [50, 50, 40]
    values = [f"outlet {n}" for n in range(9_000)]
    top = _top(counts, values, 12)
    assert [v.value for v in top[:3]] == ["outlet 17", "outlet 4000", "outlet 8999"]
    assert top == every_value_sorted(counts, values, 12)
