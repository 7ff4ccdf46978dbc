"""Test settings: fresh embedded PostgreSQL + Redis per test run unless URLs are given."""

import os

from config import devservices

if "DATABASE_URL" not in os.environ:
    _services = devservices.start_ephemeral()
    # Exported so that worker processes the tests start use the same services.
    os.environ["DATABASE_URL"] = _services.database_url
    os.environ["REDIS_URL"] = _services.redis_url

import tempfile

from .base import *
from .base import BASE_DIR

MEDIA_ROOT = os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="shop-media-"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"search": "10000/min"}
TEST_MODEL_DIR = BASE_DIR / "tests" / ".models"
SERVE_MEDIA = True

# Static files straight from the apps (no collectstatic needed outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
