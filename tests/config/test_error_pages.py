"""Refusals keep the user inside Attest: its header, and a way back."""

from django.urls import reverse


def test_a_page_outside_reach_says_not_found_with_the_way_home(client, outsider):
    client.force_login(outsider)
    response = client.get(reverse("inventory:account", args=["111122223333"]))
    assert response.status_code == 404
    assert "Not found" in response.text
    assert f'href="{reverse("home")}"' in response.text
    assert "Sign out" in response.text


def test_a_page_the_role_does_not_allow_says_so_with_the_way_home(client, reviewer):
    client.force_login(reviewer)
    response = client.get(reverse("audit:events"))
    assert response.status_code == 403
    assert "Your role does not allow this." in response.text
    assert f'href="{reverse("home")}"' in response.text
