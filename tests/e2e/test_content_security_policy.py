"""The journeys run under Attest's strict Content-Security-Policy and would notice if a page
broke it: a refused inline script is reported to the test whose page refused it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_inline_script_is_refused_and_the_refusal_reported(
    page, live_server, reviewer, csp_violations
):
    sign_in(page, live_server, reviewer)
    page.goto(reverse("reviews:queue"))
    expect(page.get_by_role("heading", name="My reviews")).to_be_visible()
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true;";
            document.body.append(script);
        }"""
    )
    # The report crosses to the test while Playwright waits on the page.
    for _ in range(50):
        if csp_violations:
            break
        page.wait_for_timeout(20)
    assert page.evaluate("() => window.injected === undefined")
    assert [(v["directive"], v["blocked"]) for v in csp_violations] == [
        ("script-src-elem", "inline")
    ]
    # Caught on purpose: the page fixture fails any test that leaves a refusal behind.
    csp_violations.clear()
