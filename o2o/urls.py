from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from orders.payments.api import PaymentNotifyView

from .api import TokenView, router

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/auth/token/", TokenView.as_view(), name="api-token"),
    # Before the router: the providers' notify URL is not a payment's detail page.
    path(
        "api/v1/payments/notify/<str:provider>/<slug:merchant_slug>/",
        PaymentNotifyView.as_view(),
        name="payment-notify",
    ),
    path("api/v1/pickups/", include("orders.pickups.api_urls")),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("cashier/", include("orders.pickups.urls")),
    path("", include("orders.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
