"""A real browser for the page tests: Debian's `chromium`, headless, driven by Playwright.

Playwright's own browser download (`playwright install`) cannot run here, so the tests drive the
system's chromium. Where it is missing and we are root with apt-get (CI's bare machine), the
fixture installs Debian's package; elsewhere the tests skip and say how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# headless, nothing of the browser's own reaching out (no QUIC, no background fetches, no
# component updates or sync)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]


# seconds an apt-get step may take before the tests give up on it (and skip); the browser test's
# own timeout leaves room for three of them
APT_TIMEOUT = 240


def apt_install() -> None:
    """`apt-get install chromium`, after `apt-get update` if the package lists lack it."""
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> int:
        try:
            done = subprocess.run(args, env=env, capture_output=True, timeout=APT_TIMEOUT)
        except subprocess.TimeoutExpired:
            return 1
        return done.returncode

    if apt(*INSTALL) != 0:
        apt("apt-get", "update")
        apt(*INSTALL)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The chromium executable (installed with apt-get as root where missing), else skip."""
    pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        apt_install()
    if not CHROMIUM.exists():
        pytest.skip(
            f"no chromium at {CHROMIUM}: install Debian's `chromium` (apt-get install chromium) "
            "to run the browser tests (Playwright's own browser download is not used)"
        )
    return CHROMIUM


@pytest.fixture
def browser_page(chromium: Path, tmp_path: Path):
    """`(page, requests)`: a fresh headless chromium page; every non-file request is aborted
    and its URL appended to `requests`."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=ARGS,
            offline=True,
        )  # fmt: skip
        context.route("**/*", route)
        page = context.new_page()
        try:
            yield page, blocked
        finally:
            context.close()
