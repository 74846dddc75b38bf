"""Stopping `newsdesk run` and `serve` as operators and `make` do: SIGTERM or SIGINT, once or twice, to the group.

Each test drives the real process (its own process group, as a shell job or `make run` is) while
it polls a local feed server, and asserts the stop: exit status 0 within a few seconds, one log
line about it, no traceback from the process or its parse workers, and no process left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .support.httpserver import FeedServer, Reply
from .support.procs import (
    NEWSDESK,
    TRACEBACK,
    Newsdesk,
    env,
    serve_feeds,
    store_query,
    wait_until,
    write_config,
)

#: Seconds a stop may take: the 4 s grace for work in flight plus start-up slack on a busy 2-core CI box.
STOP_BOUND = 9.0
#: Enough feeds that the poll uses parse worker processes (PROCESS_POOL_MIN_FEEDS is 24) and lasts a while.
FEEDS = 40


def busy_run(tmp_path: Path, feed_server: FeedServer, *, delay: float = 0.05) -> Newsdesk:
    """Start `newsdesk run` on FEEDS slowish feeds and return it once its poll is under way."""
    urls = serve_feeds(feed_server, FEEDS, 30, delay=delay)
    process = Newsdesk(write_config(tmp_path, urls), "run", "--tick", "1")
    if not process.wait_for_log(r"poll feed=", timeout=90):
        process.kill_group()
        raise AssertionError(f"the poll never started:\n{process.log()}")
    return process


def assert_clean_stop(process: Newsdesk, started: float, status: int = 0) -> str:
    """Assert the process exited with ``status`` within STOP_BOUND of ``started``, quietly; return its log."""
    try:
        code = process.wait(timeout=STOP_BOUND + 30)
    finally:
        process.kill_group()
    elapsed = time.monotonic() - started
    log = process.log()
    assert code == status, log
    assert elapsed < STOP_BOUND, f"stopping took {elapsed:.1f} s\n{log}"
    assert not TRACEBACK.search(log), log
    assert "leaked" not in log and "Warning" not in log, log
    return log


@pytest.mark.slow
@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM,), (signal.SIGTERM, signal.SIGTERM), (signal.SIGINT,)],
    ids=["TERM", "TERM-TERM", "INT"],
)
def test_run_stops_cleanly_on_signals_to_its_group(
    tmp_path: Path, feed_server: FeedServer, signals: tuple[int, ...]
) -> None:
    process = busy_run(tmp_path, feed_server)
    try:
        if (os.cpu_count() or 1) > 1:
            # The parse workers are up: the signal reaches them too (the pool and its fork server).
            assert wait_until(lambda: len(process.live_group_members()) >= 3, timeout=30), process.log()
        started = time.monotonic()
        for signum in signals:
            process.signal_group(signum)
            time.sleep(0.05)
    except BaseException:
        process.kill_group()
        raise
    log = assert_clean_stop(process, started)
    assert len([line for line in log.splitlines() if "stopping (" in line]) == 1, log
    assert signal.Signals(signals[0]).name in log
    # Nothing of the group outlives it: workers are shut down or exit with their parent.
    assert wait_until(lambda: not process.live_group_members(), timeout=5), process.live_group_members()
    # Feeds the stop kept from being checked are due, not failed: none carries an error.
    db = tmp_path / "data" / "newsdesk.db"
    assert store_query(db, "SELECT url, last_error FROM feeds WHERE last_error IS NOT NULL") == []


@pytest.mark.slow
def test_a_fetch_that_hangs_is_abandoned_within_the_grace_period(tmp_path: Path, feed_server: FeedServer) -> None:
    def stall(_request: object) -> Reply:
        time.sleep(25)
        return Reply(200, b"<rss/>")

    feed_server.route("/stall.xml", stall)
    port_config = write_config(tmp_path, [feed_server.url("/stall.xml")])
    process = Newsdesk(port_config, "run", "--tick", "1")
    try:
        assert wait_until(lambda: bool(feed_server.hits("/stall.xml")), timeout=90), process.log()
        started = time.monotonic()
        process.signal_group(signal.SIGTERM)
    except BaseException:
        process.kill_group()
        raise
    log = assert_clean_stop(process, started)
    assert "abandoned" in log
    db = tmp_path / "data" / "newsdesk.db"
    # The abandoned check left nothing behind: the feed is simply due again.
    assert store_query(db, "SELECT last_checked_at FROM feeds") == [(None,)]


@pytest.mark.slow
def test_a_third_signal_forces_the_exit(tmp_path: Path, feed_server: FeedServer) -> None:
    def stall(_request: object) -> Reply:
        time.sleep(25)
        return Reply(200, b"<rss/>")

    feed_server.route("/stall.xml", stall)
    process = Newsdesk(write_config(tmp_path, [feed_server.url("/stall.xml")]), "run", "--tick", "1")
    try:
        assert wait_until(lambda: bool(feed_server.hits("/stall.xml")), timeout=90), process.log()
        started = time.monotonic()
        for _ in range(3):
            process.signal_group(signal.SIGTERM)
            time.sleep(0.2)
        code = process.wait(timeout=30)
    finally:
        process.kill_group()
    assert code == 1
    assert time.monotonic() - started < 3.0
    log = process.log()
    assert "stop forced by a third signal" in log and not TRACEBACK.search(log)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_serve_stops_cleanly_on_signals_to_its_group(tmp_path: Path, signum: int) -> None:
    config = write_config(tmp_path, [])
    port = int(config.read_text().split("port = ")[1].split()[0])
    process = Newsdesk(config, "serve")
    try:
        assert wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=90), process.log()
        started = time.monotonic()
        process.signal_group(signum)
        process.signal_group(signum)
    except BaseException:
        process.kill_group()
        raise
    log = assert_clean_stop(process, started)
    assert len([line for line in log.splitlines() if "stopping (" in line]) == 1, log
    assert not (tmp_path / "data" / "index").exists()  # serve never writes the index


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_stopped_with_sigterm_to_the_group_reports_no_error(tmp_path: Path, feed_server: FeedServer) -> None:
    # What `make run` then `kill -TERM -<pgid>` does: newsdesk gets the signal from the group and
    # may get it again from make, which passes a SIGTERM on to its children.
    urls = serve_feeds(feed_server, FEEDS, 30, delay=0.05)
    config = write_config(tmp_path, urls)
    (tmp_path / "Makefile").write_text(f"run:\n\t{NEWSDESK} --config {config} run --tick 1\n")
    with open(tmp_path / "make.log", "wb") as output:
        make = subprocess.Popen(
            ["make", "-f", str(tmp_path / "Makefile"), "run"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env(),
            start_new_session=True,
            cwd=tmp_path,
        )
    try:
        assert wait_until(lambda: "poll feed=" in (tmp_path / "make.log").read_text(), timeout=90)
        started = time.monotonic()
        os.killpg(make.pid, signal.SIGTERM)
        code = make.wait(timeout=STOP_BOUND + 30)
    finally:
        try:
            os.killpg(make.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    output_text = (tmp_path / "make.log").read_text()
    assert time.monotonic() - started < STOP_BOUND
    # make dies of the SIGTERM it got itself (GNU make re-raises it), but reports its recipe as
    # failed ("make: *** [Makefile:2: run] Error 1" or "Terminated") only when newsdesk did not exit 0.
    assert code in (0, -signal.SIGTERM), output_text
    assert "***" not in output_text and not TRACEBACK.search(output_text), output_text
    assert "stopping (SIGTERM)" in output_text
