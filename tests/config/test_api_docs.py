"""The API's schema and its documentation page, for the people and programs that integrate."""

from django.urls import reverse


def test_the_schema_describes_every_endpoint_for_a_signed_in_client(api, reviewer):
    response = api(reviewer).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/accounts/",
        "/api/principals/",
        "/api/campaigns/",
        "/api/campaigns/{campaign_id}/items/",
        "/api/items/{item_id}/",
        "/api/items/{item_id}/decision/",
        "/api/items/bulk-decision/",
        "/api/items/reassign/",
        "/api/remediations/",
        "/api/audit-events/",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"


def test_the_schema_is_not_public(api, db):
    assert api().get("/api/schema/").status_code == 401


def test_the_docs_page_serves_its_own_swagger_ui(client, reviewer):
    client.force_login(reviewer)
    response = client.get(reverse("api:docs"))
    assert response.status_code == 200
    page = response.content.decode()
    # From Attest's own static files, not a CDN, and the script apart from the page.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "?script=" in page
    script = client.get(reverse("api:docs"), {"script": ""})
    assert script.status_code == 200
    assert "/api/schema/" in script.content.decode()


def test_the_docs_page_asks_a_stranger_to_sign_in(client, db):
    response = client.get(reverse("api:docs"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
