"""The run command's settings: services from ``config.devservices`` unless URLs are set."""

import os

from config import devservices

from .base import *
from .base import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=True)

if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
    _state = devservices.read_state(BASE_DIR)
    if _state is not None:
        DATABASES["default"].update(
            env.db_url_config(os.environ.get("DATABASE_URL", _state.database_url))
        )
        _redis = os.environ.get("REDIS_URL", _state.redis_url)
        CACHES["default"]["LOCATION"] = _redis
        CELERY_BROKER_URL = CELERY_RESULT_BACKEND = _redis

# Static files straight from the apps (no collectstatic needed outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# The run command serves uploaded product photos itself.
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
