"""A real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_path() -> str | None:
    """Return the Chromium executable to use, or None."""
    for candidate in (os.environ.get("NEWSDESK_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextmanager
def launch_browser() -> Iterator[Any]:
    """Yield a Playwright Browser; skip locally (fail in CI) when no Chromium is installed."""
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: .ci/run must install Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def artifact(name: str) -> Path:
    """Return a path under test-artifacts/ for a screenshot or log."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
