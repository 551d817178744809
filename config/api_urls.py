"""The REST API's URLs, under /api/."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import routers

from audit.api import AuditEventViewSet
from config.api import ApiMixin
from inventory.api import AccountViewSet, PrincipalViewSet, RunViewSet
from reviews.api import CampaignViewSet, DefinitionViewSet, ItemViewSet, RemediationViewSet


class Router(routers.DefaultRouter):
    class APIRootView(ApiMixin, routers.APIRootView):
        """Attest's REST API. The schema is at /api/schema/, its documentation at /api/docs/."""


class SchemaView(ApiMixin, SpectacularAPIView):
    pass


router = Router()
router.register("accounts", AccountViewSet, basename="account")
router.register("runs", RunViewSet, basename="run")
router.register("principals", PrincipalViewSet, basename="principal")
router.register("definitions", DefinitionViewSet, basename="definition")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("items", ItemViewSet, basename="item")
router.register("remediations", RemediationViewSet, basename="remediation")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

campaign_items = ItemViewSet.as_view({"get": "list"})

app_name = "api"
urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    # For people: signed in through the pages, so a stranger is sent to the sign-in page.
    path(
        "docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path("campaigns/<uuid:campaign_id>/items/", campaign_items, name="campaign-items"),
    path("", include(router.urls)),
]
