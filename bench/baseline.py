"""A benchmark's baseline of our own: the same measurement run on the code of another git revision.

This machine's speed moves from run to run (README, "Benchmarks"), so a figure measured today says
little against one in the README. ``--baseline REV`` in bench/poll.py and bench/normalize.py runs
the code of REV in the same run: ``checkout`` puts it in a temporary worktree, ``run_in_tree`` runs
a benchmark's own process on it (with this venv's libraries), and the script's ``use_tree()`` at
import makes that process, and every process it starts, import REV's modules instead of this tree's.
The script itself is this tree's, so REV must offer the functions it calls (true back to 019f12f,
the commit of the README's polling and normalization tables); an older one fails with its traceback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The checkout a baseline process imports our code from. An environment variable, not an option:
#: parse workers re-import the benchmark script as their main module and must find the same tree.
TREE_VARIABLE = "NEWSDESK_BENCH_TREE"


def use_tree() -> None:
    """Put the baseline's checkout ahead of this tree on sys.path, in a process ``run_in_tree`` started."""
    tree = os.environ.get(TREE_VARIABLE)
    if tree:
        sys.path.insert(0, tree)


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """Check ``revision`` of this repository out into a temporary detached worktree; remove it afterwards."""
    where = Path(tempfile.mkdtemp(prefix="newsdesk-baseline-")) / "tree"
    git = ["git", "-C", str(REPO)]
    subprocess.run([*git, "worktree", "add", "--detach", "--quiet", str(where), revision], check=True)
    try:
        yield where
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(where)], check=False)
        shutil.rmtree(where.parent, ignore_errors=True)


def run_in_tree(
    command: list[str], tree: Path | None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a benchmark's own process) on the code of ``tree``, or of this tree when None."""
    if tree is None:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    # Python 3.11's fork server imports its preloaded modules without the sys.path it is handed (it
    # has its own: the working directory, PYTHONPATH, then this venv's editable install of this
    # tree), so the process starts in the baseline's tree, with that tree on PYTHONPATH too.
    environment = {**os.environ, TREE_VARIABLE: str(tree), "PYTHONPATH": str(tree)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=tree, check=False
    )


def short_id(revision: str) -> str:
    """Return ``revision``'s short commit id, for reports."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", revision], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
