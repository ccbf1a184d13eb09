import pytest

from tests.factories import MerchantFactory

from .books import Books, books_for


@pytest.fixture
def books(db) -> Books:
    return books_for(MerchantFactory(slug="ours", name="Ours", timezone="Asia/Shanghai"))


@pytest.fixture
def rival_books(db) -> Books:
    return books_for(MerchantFactory(slug="rival", name="Rival", timezone="Asia/Shanghai"))
