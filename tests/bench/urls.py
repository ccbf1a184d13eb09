"""The production URLs plus the benchmarks' yardsticks: the cheapest page Django can serve, and the cheapest
authenticated API answer DRF can give (the same token authentication as the POS API, IsAuthenticated)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.urls import urlpatterns as production_urlpatterns


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


class TrivialApiView(APIView):
    """Token lookup (one query), permission check, a tiny JSON body: what every API request pays anyway."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"ok": True, "user": request.user.pk})


urlpatterns = [
    path("bench/trivial", trivial, name="bench-trivial"),
    path("bench/trivial-api", TrivialApiView.as_view(), name="bench-trivial-api"),
    *production_urlpatterns,
]
