from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from reviews.views.home import home

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inventory/", include("inventory.urls")),
    path("audit/", include("audit.urls")),
    path("", include("reviews.urls")),
    path("admin/", admin.site.urls),
]
