"""The cashier page at /cashier/."""

from django.urls import path

from . import views

app_name = "cashier"
urlpatterns = [
    path("", views.cashier_home, name="home"),
    path("redeem/", views.cashier_redeem, name="redeem"),
    path("redeemed/<int:pk>/", views.cashier_redeemed, name="redeemed"),
    path("store/", views.cashier_store_picker, name="stores"),
    path("store/choose/", views.cashier_store_choose, name="store-choose"),
    path("login/", views.CashierLoginView.as_view(), name="login"),
    path("logout/", views.CashierLogoutView.as_view(), name="logout"),
]
