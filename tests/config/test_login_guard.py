"""Guessing an admin password: locked out after a few tries, the right one included."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


def _login(client, password, username="boss", **extra):
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, **extra
    )


def test_admin_login_locks_out_after_the_limit_and_refuses_the_right_password(client, staff):
    assert _login(client, PASSWORD).status_code == 302  # works before any failure
    client.logout()
    for _ in range(3):
        assert _login(client, "guess").status_code == 200  # the form again, "wrong password"
    locked = _login(client, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_lockout_holds_for_the_api_login_and_any_authenticate_call(client, staff, rf):
    from django.contrib.auth import authenticate

    for _ in range(3):
        _login(client, "guess")
    r = client.post("/api-auth/login/", {"username": "boss", "password": PASSWORD})
    assert r.status_code == 429
    # The backend itself refuses, whatever view asks (same address as the test client).
    assert authenticate(rf.post("/"), username="boss", password=PASSWORD) is None
    other = rf.post("/", REMOTE_ADDR="10.9.9.9")
    assert authenticate(other, username="boss", password=PASSWORD) is not None


def test_another_address_is_not_locked_out(client, staff):
    for _ in range(3):
        _login(client, "guess", REMOTE_ADDR="10.0.0.1")
    assert _login(client, PASSWORD, REMOTE_ADDR="10.0.0.2").status_code == 302


def test_forwarded_for_cannot_dodge_the_lockout_without_trusted_proxies(client, staff, settings):
    settings.NUM_PROXIES = 0
    for i in range(3):
        _login(client, "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert _login(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_behind_one_trusted_proxy_the_forwarded_address_is_the_client(client, staff, settings):
    settings.NUM_PROXIES = 1
    for _ in range(3):
        _login(client, "guess", HTTP_X_FORWARDED_FOR="198.51.100.7")
    # A different shopper behind the same proxy (same REMOTE_ADDR) can still sign in.
    assert _login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302
