"""Run the real `newsdesk` console script, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NEWSDESK = str(Path(sys.executable).parent / "newsdesk")


def newsdesk(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `newsdesk --config CONFIG ARGS...` (ignoring $NEWSDESK_CONFIG); assert success unless ``check`` is off."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    result = subprocess.run(
        [NEWSDESK, "--config", str(config), *args], capture_output=True, text=True, timeout=120, env=env
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
