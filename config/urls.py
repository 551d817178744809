from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from reviews.views.home import home

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The language switch is in every page's header, the sign-in page's included.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("inventory/", include("inventory.urls")),
    path("audit/", include("audit.urls")),
    path("", include("reviews.urls")),
    path("admin/", admin.site.urls),
]
