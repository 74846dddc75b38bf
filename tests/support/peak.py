"""Run a command and measure the peak memory of it and of every process it starts (Linux, stdlib only).

``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the largest peak resident size among the
children a process has waited for, and their own waited-for children. A poll's parse workers are
children of multiprocessing's fork server, which outlives the poll by a moment and is waited for
by no one; so the command runs under a small wrapper that makes itself a child subreaper
(prctl PR_SET_CHILD_SUBREAPER), waits for every orphan too, and reports the figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

_WRAPPER = r"""
import ctypes, json, os, resource, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
argv, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
while True:  # the fork server and any worker left: ours to wait for now
    try:
        os.wait()
    except ChildProcessError:
        break
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "peak": peak}))
"""


@dataclass(frozen=True)
class Measured:
    """What a measured command did."""

    #: Its exit status.
    returncode: int
    #: What it wrote to stdout.
    stdout: str
    #: What it wrote to stderr.
    stderr: str
    #: Largest resident set size of any process of the run (the command or one it started), bytes.
    peak_rss: int
    #: Wall-clock seconds the run took.
    seconds: float


def run_measured(argv: list[str], *, timeout: float = 300, env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` to completion; return its output, its peak memory over every process, and its time."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError("run_measured needs Linux (prctl PR_SET_CHILD_SUBREAPER)")
    started = time.monotonic()
    wrapper = subprocess.run(
        [sys.executable, "-c", _WRAPPER, json.dumps(argv), str(timeout)],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        env=env if env is not None else dict(os.environ),
        check=True,
    )
    seconds = time.monotonic() - started
    report = json.loads(wrapper.stdout)
    return Measured(report["returncode"], report["stdout"], report["stderr"], int(report["peak"]), seconds)
