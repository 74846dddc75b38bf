"""Run every benchmark in turn (each prints its own figures and ratios against its baseline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "normalize.py",
    "poll.py",
    "search.py",
    "related_quality.py",
    "language_fields.py",
    "load.py",
    "stories_quality.py",
    "scale.py",
]


def main() -> int:
    """Run each bench script found next to this one; return non-zero if any failed."""
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHES:
        script = here / name
        if not script.exists():
            print(f"== {name}: not present, skipped", flush=True)
            continue
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
