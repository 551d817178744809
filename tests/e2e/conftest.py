"""Browser tests: Debian's Chromium, driven by Playwright, against a live server on PostgreSQL.

The browser is /usr/bin/chromium (`make test` installs it with apt when missing); Playwright's
own browser download is never used. One browser serves the session and each test gets a fresh
context, so no cookie or storage leaks from one journey into the next. The live server is a
thread of this process: settings changed here, eager Celery tasks and Django's locmem outbox
are shared with it.

Every page runs under Attest's Content-Security-Policy, and a journey during which the browser
refused anything under it fails: each `securitypolicyviolation` event is reported to the test.

`shot(page, name)` writes a full-page screenshot to test-artifacts/screenshots/NAME.png (ignored
by git) for a person to look at; a failing test leaves one named after it there too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
# Runs in every document before its own scripts: tells the test what the policy refused.
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
    window.reportCspViolation({
        directive: event.effectiveDirective,
        blocked: event.blockedURI,
        page: event.documentURI,
        source: event.sourceFile,
        line: event.lineNumber,
        column: event.columnNumber,
        sample: event.sample,
        element: event.target && event.target.outerHTML ? event.target.outerHTML.slice(0, 300) : "",
    });
}, true);
"""


def pytest_collection_modifyitems(items):
    # Without the browser the journeys cannot run: say why at once rather than fail in
    # Playwright, and never pass by skipping them.
    if os.path.exists(CHROMIUM) or not any("browser" in item.keywords for item in items):
        return
    raise pytest.UsageError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # The page fixture reads this at teardown to keep a screenshot of a failed journey.
    if report.when == "call":
        item.e2e_failed = report.failed
    return report


@pytest.fixture(scope="package")
def browser():
    # Playwright's sync API keeps an event loop running in this thread while it lives, which
    # Django takes for async code; the tests' own ORM calls (building the world, checking it)
    # are plain sync code. Package scope: the loop and this setting end with the browser tests.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _plain_http_cookies(settings):
    """The live server speaks plain HTTP: cookies marked Secure would never come back."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def csp_violations():
    """What the Content-Security-Policy refused in the test's pages; it must stay empty."""
    return []


@pytest.fixture
def page(browser, live_server, request, csp_violations):
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="en-GB")
    # Auto-waiting gives up sooner than Playwright's 30 s: every page here answers at once.
    context.set_default_timeout(10_000)
    context.expose_binding(
        "reportCspViolation", lambda source, violation: csp_violations.append(violation)
    )
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    yield page
    failed = f"failed-{request.node.name}"
    if getattr(request.node, "e2e_failed", False):
        shot(page, failed)
    else:
        _screenshot_path(failed).unlink(missing_ok=True)
    context.close()
    assert not csp_violations, f"the Content-Security-Policy refused: {csp_violations}"


def _screenshot_path(name: str) -> Path:
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"


def shot(page, name: str) -> Path:
    """A full-page screenshot of what the user sees now, for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = _screenshot_path(name)
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, live_server, user) -> None:
    """Sign in through the login form, as the user would, and land on the home page."""
    page.goto(f"{live_server.url}{reverse('login')}")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Attest")).to_be_visible()
