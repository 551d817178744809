from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/<str:account_id>/", views.account_detail, name="account"),
    path("accounts/<str:account_id>/collect/", views.start_collection, name="collect"),
    path("collect/", views.start_all_collections, name="collect-all"),
    path("runs/<uuid:run_uuid>/", views.run_detail, name="run"),
    path("principals/", views.principal_list, name="principals"),
    path("principals/<uuid:principal_uuid>/", views.principal_detail, name="principal"),
]
