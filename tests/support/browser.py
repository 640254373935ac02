"""Browser test harness: Debian's headless Chromium driven by Playwright against a live test server.

Never downloads a browser: it launches /usr/bin/chromium (or $CHROMIUM_PATH). Without it, browser
tests are skipped and the run ends with a visible notice (CI installs chromium, so there they run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
_skipped: list[str] = []


def chromium_available() -> bool:
    return Path(CHROMIUM_PATH).exists()


@pytest.fixture(scope="session")
def browser():
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run browser tests but {CHROMIUM_PATH} is missing")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM_PATH} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the test
    # itself (setting up data) are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    user_data_dir = tempfile.mkdtemp(prefix="swb-chromium-")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()
            shutil.rmtree(user_data_dir, ignore_errors=True)


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context and page; `page.base_url` is the live server's address."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.base_url = live_server.url
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def admin_login(page):
    """`admin_login(username, password)` logs the page into the Django admin."""

    def login(username: str, password: str = "pw-for-tests-1") -> None:
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")

    return login


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def pytest_runtest_logreport(report) -> None:
    if report.skipped and "browser" in report.keywords:
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    if _skipped:
        terminalreporter.write_sep("!", f"NOTICE: {len(_skipped)} browser test(s) SKIPPED — {CHROMIUM_PATH} not found")
        terminalreporter.write_line("Install Debian's chromium (apt-get install chromium) to run them; CI always does.")
