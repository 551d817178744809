from django.urls import path

from reviews.views import evidence, manager, reviewer
from reviews.views import remediation as remediation_views

app_name = "reviews"
urlpatterns = [
    # A reviewer's work.
    path("reviews/", reviewer.queue, name="queue"),
    path("reviews/bulk/", reviewer.bulk_decide, name="bulk"),
    path("reviews/items/<uuid:item_uuid>/", reviewer.item_detail, name="item"),
    path("reviews/items/<uuid:item_uuid>/decide/", reviewer.decide_item, name="decide"),
    path("reviews/items/<uuid:item_uuid>/reassign/", reviewer.reassign_item, name="reassign"),
    path(
        "reviews/items/<uuid:item_uuid>/replacement/",
        reviewer.replacement_preview,
        name="replacement",
    ),
    # Campaigns, as managers and auditors see them.
    path("campaigns/", manager.campaign_list, name="campaigns"),
    path("campaigns/new/", manager.campaign_new, name="campaign-new"),
    path("campaigns/<uuid:campaign_uuid>/", manager.campaign_detail, name="campaign"),
    path("campaigns/<uuid:campaign_uuid>/items/", manager.campaign_items, name="campaign-items"),
    path("campaigns/<uuid:campaign_uuid>/launch/", manager.campaign_launch, name="launch"),
    path("campaigns/<uuid:campaign_uuid>/close/", manager.campaign_close, name="close"),
    path("campaigns/<uuid:campaign_uuid>/remind/", manager.campaign_remind, name="remind"),
    path(
        "campaigns/<uuid:campaign_uuid>/reassign/",
        manager.campaign_reassign,
        name="campaign-reassign",
    ),
    path("campaigns/<uuid:campaign_uuid>/signoff/", manager.campaign_signoff, name="signoff"),
    path("campaigns/<uuid:campaign_uuid>/evidence/", evidence.campaign_evidence, name="evidence"),
    # Remediation: what was done in AWS about the revocations, and the manager's answers.
    path(
        "campaigns/<uuid:campaign_uuid>/remediations/",
        remediation_views.remediation_list,
        name="remediations",
    ),
    path(
        "campaigns/<uuid:campaign_uuid>/remediations/summary/",
        remediation_views.remediation_summary,
        name="remediations-summary",
    ),
    path(
        "campaigns/<uuid:campaign_uuid>/remediations/approve/",
        remediation_views.remediations_approve,
        name="remediations-approve",
    ),
    path(
        "campaigns/<uuid:campaign_uuid>/remediations/plan/<str:account_id>/",
        remediation_views.remediation_plan,
        name="remediation-plan",
    ),
    path(
        "remediations/<uuid:remediation_uuid>/",
        remediation_views.remediation_detail,
        name="remediation",
    ),
    path(
        "remediations/<uuid:remediation_uuid>/rollback/",
        remediation_views.remediation_rollback,
        name="remediation-rollback",
    ),
    path(
        "remediations/<uuid:remediation_uuid>/except/",
        remediation_views.remediation_except,
        name="remediation-except",
    ),
    path(
        "remediations/<uuid:remediation_uuid>/confirm/",
        remediation_views.remediation_confirm,
        name="remediation-confirm",
    ),
    path(
        "remediations/<uuid:remediation_uuid>/retry/",
        remediation_views.remediation_retry,
        name="remediation-retry",
    ),
]
