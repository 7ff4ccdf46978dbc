"""Production settings (the Dockerfile and docker-compose use them): DEBUG off whatever the
environment says, HTTPS and host checks on. Everything else, and every other variable, comes
from ``base.py``; the security variables below are read through its ``env``.

Behind a TLS-terminating proxy set ``SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https``;
serving plain HTTP on purpose (a local ``docker compose up``) needs
``SECURE_SSL_REDIRECT=false`` and the two ``*_COOKIE_SECURE=false``.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import env

DEBUG = False
# What Django's check --deploy calls weak (W009), refused instead of warned about: anyone who
# knows the key can forge sessions, password-reset links and signed values. Placeholders such
# as "change-me" and the development key are all shorter than 50 characters.
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-"):
    raise ImproperlyConfigured(
        f"Set SECRET_KEY: production refuses this one ({len(SECRET_KEY)} characters, "
        f"{len(set(SECRET_KEY))} different). Use at least 50 random characters, e.g. from "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
# No default: a production host must say which names it answers to.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=False)

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_header and len(_proxy_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER is 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) or None
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
# Start low and raise it (e.g. 31536000) once HTTPS works everywhere: browsers remember it.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
