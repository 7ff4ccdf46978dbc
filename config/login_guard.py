"""Sign-in lockout: after ``LOGIN_FAILURE_LIMIT`` wrong passwords from one address for one
username (or ``4 x`` that for any usernames), every sign-in from that address is refused for
``LOGIN_LOCKOUT_SECONDS``, the right password included.

The backend enforces it wherever Django authenticates (admin, the browsable API's login, HTTP
basic auth on the API); the middleware only turns a locked admin or API login form into a
429 page that says how long to wait, instead of the form's generic "wrong password". Counts
live in the cache (Redis): with Redis down, sign-in works and nothing is counted.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from config.proxies import client_address

LOGIN_PATHS = ("/admin/login/", "/api-auth/login/")
# Spraying many usernames from one address is refused too, at a higher count.
_ANY_USER_FACTOR = 4


def _keys(request: HttpRequest | None, username: str | None) -> tuple[str, str]:
    address = client_address(request)
    return (
        f"login-fail:{address}:{(username or '').strip().lower()}",
        f"login-fail:{address}",
    )


def _counts(keys: tuple[str, str]) -> tuple[int, int]:
    found = cache.get_many(keys)
    return found.get(keys[0], 0), found.get(keys[1], 0)


def login_locked(request: HttpRequest | None, username: str | None) -> bool:
    limit = settings.LOGIN_FAILURE_LIMIT
    user_count, any_count = _counts(_keys(request, username))
    return user_count >= limit or any_count >= limit * _ANY_USER_FACTOR


def _count_failure(request: HttpRequest | None, username: str | None) -> None:
    for key in _keys(request, username):
        # add() then incr(): the count's expiry starts at the first failure of a window.
        cache.add(key, 0, settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between the two calls
            cache.set(key, 1, settings.LOGIN_LOCKOUT_SECONDS)


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field())
        if login_locked(request, username):
            raise PermissionDenied("Too many failed sign-ins")  # stops the other backends too
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            _count_failure(request, username)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


class LoginLockoutMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.path in LOGIN_PATHS
            and login_locked(request, request.POST.get("username"))
        ):
            minutes = max(1, round(settings.LOGIN_LOCKOUT_SECONDS / 60))
            response = HttpResponse(
                "<!doctype html><title>Too many sign-in attempts</title>"
                "<main><h1>Too many failed sign-in attempts</h1>"
                f"<p>Sign-in from this address is paused for up to {minutes} minutes. "
                "Wait, then try again, or ask another administrator to reset your password."
                "</p></main>",
                status=429,
            )
            response["Retry-After"] = str(settings.LOGIN_LOCKOUT_SECONDS)
            return response
        return self.get_response(request)
