"""The portal's admin site: who may enter is decided by staff role, not only `is_staff`."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .tenancy import ANALYST, MANAGER, role_name_of


class PortalAdminSite(admin.AdminSite):
    site_header = _("O2O merchant portal")
    site_title = _("O2O portal")
    index_title = _("Merchant administration")

    def has_permission(self, request):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        # Cashiers work at /cashier/ and through the API; the admin is for managers and analysts.
        return user.is_superuser or role_name_of(user) in {MANAGER, ANALYST}
