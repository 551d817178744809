"""The product's URLs and a trivial page behind the same sign-in, which the benchmark serves
beside real pages as their reference: what a request costs before a view does any work."""

from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as product


def trivial(request):
    return HttpResponse(f"signed in as {request.user.get_username()}")


urlpatterns = [path("bench/trivial/", trivial), *product]
