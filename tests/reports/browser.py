"""Debian's Chromium for the browser tests: where it is, the mark that skips a test without it,
and how the tests start it (headless, no sandbox as root, no background connections: this
machine's network is closed)."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SKIP_REASON = "Debian's chromium is not installed (.ci/run installs it)"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)


def launch(playwright):
    """A headless Chromium from a ``sync_playwright()`` context."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    )
