import pytest

from tests.pickups.conftest import shop  # noqa: F401 - the same merchant, stores and staff

from . import fakes


@pytest.fixture(autouse=True)
def recorded_sms(settings):
    """SMS go to a recorder (e-mail to Django's test outbox, as pytest-django sets it up)."""
    settings.NOTIFICATIONS_SMS_BACKEND = "tests.members.fakes.RecordingSMS"
    settings.NOTIFICATIONS_EMAIL_BACKEND = "members.notifications.backends.EmailBackend"
    fakes.SENT.clear()
    fakes.FailingSMS.calls = 0
    return fakes.SENT
