"""A state change needs the CSRF token of the session that sends it, from Attest's own origin."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from reviews.models import ReviewItem
from tests.reviews.builders import launched
from tests.security.matrix import PASSWORD


def _browser(user):
    """A client that checks CSRF as a browser's requests are checked, signed in through the
    form; returns it with the token its pages carry."""
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = browser.post(
        reverse("login"),
        {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert signed_in.status_code == 302
    home = browser.get(reverse("home"))
    return browser, re.search(r'"X-CSRFToken": "([^"]+)"', home.text).group(1)


@pytest.fixture
def item(reviewer, manager, account):
    campaign = launched(manager, [account])
    return campaign.items.filter(reviewer=reviewer).first()


def _decide(browser, item, **extra):
    data = {"decision": "keep", "reason": "Still needed.", "version": item.version}
    return browser.post(reverse("reviews:decide", args=[item.uuid]), data, **extra)


def _decided(item):
    return ReviewItem.objects.get(pk=item.pk).decision


def test_a_decision_with_the_sessions_token_goes_through(reviewer, item):
    browser, token = _browser(reviewer)
    answer = _decide(browser, item, headers={"X-CSRFToken": token})
    assert answer.status_code == 302
    assert _decided(item) == "keep"


def test_a_decision_without_a_token_is_refused(reviewer, item):
    browser, _token = _browser(reviewer)
    assert _decide(browser, item).status_code == 403
    assert _decided(item) == ""


def test_a_decision_with_another_sessions_token_is_refused(reviewer, manager, item):
    browser, _mine = _browser(reviewer)
    _other, theirs = _browser(manager)
    assert _decide(browser, item, headers={"X-CSRFToken": theirs}).status_code == 403
    assert _decided(item) == ""


def test_a_decision_from_a_foreign_origin_is_refused(reviewer, item):
    browser, token = _browser(reviewer)
    answer = _decide(
        browser, item, headers={"X-CSRFToken": token, "Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert _decided(item) == ""


def test_signing_in_and_out_need_the_token_too(reviewer):
    browser = Client(enforce_csrf_checks=True)
    refused = browser.post(reverse("login"), {"username": reviewer.username, "password": PASSWORD})
    assert refused.status_code == 403
    assert settings.SESSION_COOKIE_NAME not in browser.cookies

    signed_in, _token = _browser(reviewer)
    assert signed_in.post(reverse("logout")).status_code == 403
    assert signed_in.get(reverse("home")).status_code == 200
