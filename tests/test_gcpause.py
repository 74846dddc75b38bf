"""Pausing the cyclic garbage collector: the state it had is always restored, across nesting, errors and threads."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from aggregator.gcpause import collector_paused


@pytest.fixture(autouse=True)
def collector_enabled_after() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


class Node:
    def __init__(self) -> None:
        self.itself = self


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
        cycles = [Node() for _ in range(2000)]
        assert gc.get_count()[0] >= 2000  # no young collection ran while the pause lasted
        last = weakref.ref(cycles[-1])
        del cycles
        assert last() is not None  # a cycle: reference counting alone does not free it
    assert gc.isenabled()
    gc.collect()
    assert last() is None  # cycles made during the pause are collected afterwards, not leaked


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_error_inside_restores_the_collector() -> None:
    gc.enable()
    with pytest.raises(ValueError, match="boom"), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_nested_pauses_restore_only_at_the_outermost() -> None:
    gc.enable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_restore_when_the_last_ends() -> None:
    # Thread A pauses, B pauses, A ends first: B's batch must still run paused, and when B ends the
    # collector is enabled again (B must not "restore" the disabled state it found A had made).
    gc.enable()
    a_in, b_in, a_out, b_may_end = (threading.Event() for _ in range(4))
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector_paused():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with collector_paused():
            b_in.set()
            a_out.wait(5)
            seen["after the first ended"] = gc.isenabled()
            b_may_end.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    a_out.wait(5)
    b_may_end.set()
    for thread in threads:
        thread.join(5)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()
