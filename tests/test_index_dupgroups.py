"""Banded SimHash groups: near copies always share a band, and the indexer's table assigns groups."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregator.simhash import hamming
from index.dupgroups import MAX_SPREAD_SECONDS, DupGroups, band_tokens, bands

SIGNED64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(SIGNED64, st.sets(st.integers(min_value=0, max_value=63), max_size=3))
def test_fingerprints_within_three_bits_share_a_band(fingerprint: int, flips: set[int]) -> None:
    other = fingerprint
    for bit in flips:
        other ^= 1 << bit
    other = other - (1 << 64) if other >= 1 << 63 else other
    if fingerprint and other:
        assert hamming(fingerprint, other) == len(flips)
        assert set(bands(fingerprint)) & set(bands(other))


def test_zero_fingerprint_has_no_bands() -> None:
    assert bands(0) == [] and band_tokens(0) == []
    assert len(band_tokens(-1)) == 4


def test_groups_join_near_copies_and_keep_strangers_apart() -> None:
    groups = DupGroups()
    base = 0x1234_5678_9ABC_DEF0
    assert groups.assign("a", base, 1000.0) == "a"
    assert groups.assign("b", base ^ 0b101, 2000.0) == "a"  # 2 bits apart: same story
    assert groups.assign("c", base ^ 0xFFFF_0000_FFFF, 2000.0) == "c"  # far apart
    assert groups.assign("d", base, 2000.0 + MAX_SPREAD_SECONDS + 1) == "d"  # same text, weeks later
    assert groups.assign("e", 0, 1000.0) == "e"  # no text: never grouped
    assert "e" in groups and len(groups) == 5
    groups.remove("a")
    assert groups.assign("f", base, 1500.0) == "a"  # b still carries group "a"
