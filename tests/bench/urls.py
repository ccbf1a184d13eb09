"""The production URLs plus the benchmark's yardstick: the cheapest page Django can serve."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from o2o.urls import urlpatterns as production_urlpatterns


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/trivial", trivial, name="bench-trivial"), *production_urlpatterns]
