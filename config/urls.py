from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from reviews.views.home import home

urlpatterns = [
    path("", home, name="home"),
    # GET and POST alone: Django's view would take a PUT for a POST.
    path(
        "login/",
        auth_views.LoginView.as_view(
            http_method_names=["get", "post"],
            extra_context={"sso_provider": settings.OIDC_ENABLED and settings.OIDC_PROVIDER_NAME},
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The language switch is in every page's header, the sign-in page's included.
    path("i18n/setlang/", login_not_required(require_POST(set_language)), name="set_language"),
    path("inventory/", include("inventory.urls")),
    path("audit/", include("audit.urls")),
    path("api/", include("config.api_urls")),
    path("", include("reviews.urls")),
    path("admin/", admin.site.urls),
]

# Single sign-on's pages exist only when it is configured (config.oidc).
if settings.OIDC_ENABLED:
    urlpatterns.insert(1, path("", include("config.oidc")))
