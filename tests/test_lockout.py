"""Repeated failed sign-ins lock a username+IP pair out (django-axes), on the admin and the API token.

Every attempt goes through the real login views with REMOTE_ADDR set, because the lockout is
decided by the authentication backend and turned into an answer by the middleware: a shortcut
such as `client.login()` would skip exactly the parts under test.
"""

import pytest
from django.test import Client

PASSWORD = "correct-horse-battery"
WRONG = "wrong-horse-battery"
ATTACKER_IP = "203.0.113.7"
OTHER_IP = "198.51.100.23"
LIMIT = 5  # AXES_FAILURE_LIMIT's default in settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limit(settings):
    # Pinned here so the test does not depend on the environment the suite runs in.
    settings.AXES_FAILURE_LIMIT = LIMIT


def admin_login(username: str, password: str, ip: str = ATTACKER_IP):
    """One sign-in on the admin form, from a fresh browser (no session carried over)."""
    return Client(REMOTE_ADDR=ip).post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})


def token_request(username: str, password: str, ip: str = ATTACKER_IP):
    return Client(REMOTE_ADDR=ip).post(
        "/api/v1/auth/token/", {"username": username, "password": password}, content_type="application/json"
    )


def assert_admin_refused_with_form(response):
    # A wrong password re-renders the form with an error; nothing is locked yet.
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()


def assert_admin_signed_in(response):
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def assert_locked_out_page(response):
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed sign-ins" in body
    assert f"after {LIMIT} failed attempts" in body


# --------------------------------------------------------------------------- admin


def test_admin_sixth_attempt_with_the_right_password_is_refused_after_five_failures(demo):
    # given: four wrong passwords for the manager from one address
    username = demo.ours.manager.username
    for _ in range(LIMIT - 1):
        assert_admin_refused_with_form(admin_login(username, WRONG))

    # when: the fifth failure reaches the limit
    fifth = admin_login(username, WRONG)
    # then: that answer is already the locked-out page ...
    assert_locked_out_page(fifth)

    # ... and the sixth, even with the right password, does not sign in
    sixth = admin_login(username, PASSWORD)
    assert_locked_out_page(sixth)
    assert "_auth_user_id" not in sixth.wsgi_request.session


def test_admin_lockout_does_not_block_another_username_from_the_same_address(demo):
    # given: the manager is locked out from the attacker's address
    for _ in range(LIMIT):
        admin_login(demo.ours.manager.username, WRONG)
    assert_locked_out_page(admin_login(demo.ours.manager.username, PASSWORD))

    # when / then: a colleague at the same address (same shop Wi-Fi) still signs in
    assert_admin_signed_in(admin_login(demo.ours.analyst.username, PASSWORD))


def test_admin_lockout_does_not_block_the_same_username_from_another_address(demo):
    # given: the manager is locked out from the attacker's address
    for _ in range(LIMIT):
        admin_login(demo.ours.manager.username, WRONG)

    # when / then: the real manager at another address is not locked out by the attacker
    assert_admin_signed_in(admin_login(demo.ours.manager.username, PASSWORD, ip=OTHER_IP))
    assert_locked_out_page(admin_login(demo.ours.manager.username, PASSWORD))


def test_admin_successful_sign_in_before_the_limit_resets_the_failure_count(demo):
    username = demo.ours.manager.username
    # given: one failure short of the limit, then a successful sign-in
    for _ in range(LIMIT - 1):
        assert_admin_refused_with_form(admin_login(username, WRONG))
    assert_admin_signed_in(admin_login(username, PASSWORD))

    # when: the manager mistypes again, one short of the limit
    for _ in range(LIMIT - 1):
        assert_admin_refused_with_form(admin_login(username, WRONG))

    # then: the count started again at zero (8 failures in all, yet not locked out)
    assert_admin_signed_in(admin_login(username, PASSWORD))


# --------------------------------------------------------------------------- API token


def test_token_with_right_password_authenticates_api_requests(demo):
    # given: a POS terminal exchanges the manager's password for a token
    response = token_request(demo.ours.manager.username, PASSWORD)
    assert response.status_code == 200
    token = response.json()["token"]

    # when: it lists stores with that token and no session
    stores = Client().get("/api/v1/stores/", HTTP_AUTHORIZATION=f"Token {token}")

    # then: it sees its merchant's stores
    assert stores.status_code == 200
    assert [s["code"] for s in stores.json()["results"]] == [demo.ours.store.code]
    # and asking again gives the same token rather than a second one
    assert token_request(demo.ours.manager.username, PASSWORD).json()["token"] == token


def test_token_wrong_password_is_a_plain_400_below_the_limit(demo):
    response = token_request(demo.ours.manager.username, WRONG)

    assert response.status_code == 400
    assert "token" not in response.json()


def test_token_sixth_request_with_the_right_password_is_refused_after_five_failures(demo):
    username = demo.ours.manager.username
    # given: four failures answered as bad credentials
    for _ in range(LIMIT - 1):
        assert token_request(username, WRONG).status_code == 400

    # when: the fifth failure reaches the limit, and then the right password is sent
    fifth = token_request(username, WRONG)
    sixth = token_request(username, PASSWORD)

    # then: both are a JSON 429 with a stable code, and no token is handed out
    for response in (fifth, sixth):
        assert response.status_code == 429
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "locked_out"
        assert "token" not in body


def test_token_lockout_does_not_block_another_username_from_the_same_address(demo):
    # given: the manager's token requests are locked out from one address
    for _ in range(LIMIT):
        token_request(demo.ours.manager.username, WRONG)
    assert token_request(demo.ours.manager.username, PASSWORD).status_code == 429

    # when / then: the analyst at the same address still gets a token
    response = token_request(demo.ours.analyst.username, PASSWORD)
    assert response.status_code == 200
    assert response.json()["token"]


def test_token_success_before_the_limit_resets_the_failure_count(demo):
    username = demo.ours.manager.username
    # given: one failure short of the limit, then a token is issued
    for _ in range(LIMIT - 1):
        assert token_request(username, WRONG).status_code == 400
    assert token_request(username, PASSWORD).status_code == 200

    # when: the terminal mistypes again, one short of the limit
    for _ in range(LIMIT - 1):
        assert token_request(username, WRONG).status_code == 400

    # then: the count started again at zero
    assert token_request(username, PASSWORD).status_code == 200


def test_admin_and_token_failures_count_together_for_one_username_and_address(demo):
    # A brute-forcer cannot double their guesses by alternating between the two doors.
    username = demo.ours.manager.username
    for attempt in range(LIMIT - 1):
        if attempt % 2:
            assert_admin_refused_with_form(admin_login(username, WRONG))
        else:
            assert token_request(username, WRONG).status_code == 400
    assert token_request(username, WRONG).status_code == 429

    assert_locked_out_page(admin_login(username, PASSWORD))
