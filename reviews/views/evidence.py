"""The evidence package of a campaign, downloaded by those who oversee campaigns.

Auditors and managers download it at any stage after launch (interim until sign-off); anyone
else gets a 404, as for the campaign's other oversight pages. The package tells who can do what
in every account in scope, so the download asks for the user's password again: a session left
open on a shared screen is not enough, and a wrong password counts towards the sign-in lockout.
The download changes nothing but the audit trail, which records it. The package is built into a
temporary file, so a large campaign costs disk rather than memory, and the file name is the
server's own.
"""

import tempfile

from django import forms
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from config import lockout
from reviews import evidence
from reviews.views import manager
from reviews.views.manager import OVERSEE


class PasswordAgainForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy(
            "Asked again: the package shows who can do what in every account in scope."
        ),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("The password is not right."), code="password")
        return password


@require_http_methods(["GET", "POST"])
def campaign_evidence(request, campaign_uuid):
    if not request.user.has_perm(OVERSEE):
        raise Http404
    campaign = manager._campaign(request, campaign_uuid)
    if not campaign.is_launched:
        raise Http404  # nothing is frozen before launch
    if request.method == "POST" and (locked := lockout.password_locked(request)):
        return locked
    form = PasswordAgainForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "GET" or not form.is_valid():
        if form.has_error("password", code="password") and (
            locked := lockout.wrong_password(request)
        ):
            return locked
        response = render(
            request, "reviews/campaign_evidence.html", {"campaign": campaign, "form": form}
        )
        add_never_cache_headers(response)
        return response
    # Not a `with` block: the response sends the file after the view returns, then closes it.
    package = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        # In the downloader's language: the one the page asking for the package was in.
        manifest = evidence.build(campaign, package, by=request.user, language=get_language())
        package.seek(0)
    except BaseException:
        package.close()
        raise
    response = FileResponse(
        package,
        as_attachment=True,
        filename=evidence.file_name(campaign, manifest),
        content_type="application/zip",
    )
    add_never_cache_headers(response)
    return response
