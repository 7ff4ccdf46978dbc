"""Test settings. Importing them starts nothing.

The services come from the environment like everywhere else: ``tests/conftest.py`` starts a
throwaway PostgreSQL + Redis + media folder per run (``config.devservices``) unless
``DATABASE_URL`` is given, and the benchmark harness (``python -m search.benchmarks``) does
the same for its own process before these settings load.
"""

from .base import *
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
# Every search mode falls back to "search" (search/api/throttling.py); the throttle tests lower it.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"search": "10000/min"}
SERVE_MEDIA = True
# Each decode process imports torch (seconds on two busy cores), once per test or worker
# process that indexes; tests/search/services/test_decoding.py covers the process pool.
CLIP_DECODE_POOL = env("CLIP_DECODE_POOL", default="threads")

# Static files straight from the apps (no collectstatic needed outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
