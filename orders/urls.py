from django.urls import path

from . import views
from .payments import sandbox

app_name = "orders"
urlpatterns = [
    path("p/<str:wall_code>", views.landing, name="landing"),
    path("o/<str:token>", views.order_page, name="order"),
    path("o/<str:token>/pay", views.order_pay, name="pay"),
    path("pay/sandbox/<str:token>", sandbox.sandbox_pay, name="sandbox-pay"),
]
