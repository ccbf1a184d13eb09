from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class PortalAdminConfig(AdminConfig):
    default_site = "o2o.admin.PortalAdminSite"


class O2OConfig(AppConfig):
    name = "o2o"
    verbose_name = _("O2O portal")

    def ready(self) -> None:
        from .celery import ensure_broker_folders

        ensure_broker_folders()
