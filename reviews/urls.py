from django.urls import path

from reviews.views import manager, reviewer

app_name = "reviews"
urlpatterns = [
    # A reviewer's work.
    path("reviews/", reviewer.queue, name="queue"),
    path("reviews/bulk/", reviewer.bulk_decide, name="bulk"),
    path("reviews/items/<uuid:item_uuid>/", reviewer.item_detail, name="item"),
    path("reviews/items/<uuid:item_uuid>/decide/", reviewer.decide_item, name="decide"),
    path("reviews/items/<uuid:item_uuid>/reassign/", reviewer.reassign_item, name="reassign"),
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
]
