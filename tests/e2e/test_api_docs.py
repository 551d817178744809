"""The API's documentation page, as an integrator opens it: signed in through the pages, every
operation listed from the live schema, under the strict Content-Security-Policy."""

from __future__ import annotations

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from playwright.sync_api import expect

from tests.e2e.conftest import shot, sign_in

pytestmark = pytest.mark.browser


def test_an_integrator_reads_the_api_documentation(page, live_server, manager):
    sign_in(page, live_server, manager)
    page.goto(reverse("api:docs"))
    expect(page.get_by_role("heading", name="Attest API")).to_be_visible()
    decision = page.locator(".opblock-summary-path", has_text="/api/items/{item_id}/decision/")
    expect(decision).to_be_visible()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = sum(len(methods) for methods in schema["paths"].values())
    expect(page.locator(".opblock")).to_have_count(operations)
    shot(page, "api-docs")
