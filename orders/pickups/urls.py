"""The cashier page at /cashier/."""

app_name = "cashier"
urlpatterns: list = []
