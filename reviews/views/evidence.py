"""The evidence package of a campaign, downloaded by those who oversee campaigns.

Auditors and managers download it at any stage after launch (interim until sign-off); anyone
else gets a 404, as for the campaign's other oversight pages. The download changes nothing but
the audit trail, which records it. The package is built into a temporary file, so a large
campaign costs disk rather than memory, and the file name is the server's own.
"""

import tempfile

from django.http import FileResponse, Http404
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from reviews import evidence
from reviews.models import Campaign
from reviews.views import manager
from reviews.views.manager import OVERSEE


@require_GET
def campaign_evidence(request, campaign_uuid):
    if not request.user.has_perm(OVERSEE):
        raise Http404
    campaign = manager._campaign(request, campaign_uuid)
    if campaign.state == Campaign.State.DRAFT:
        raise Http404  # nothing is frozen before launch
    # Not a `with` block: the response sends the file after the view returns, then closes it.
    package = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        manifest = evidence.build(campaign, package, by=request.user)
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
