"""The run command's settings: services from ``config.devservices`` unless URLs are set."""

import os

from config import devservices

from .base import *
from .base import BASE_DIR, env

# Off unless asked for (DEBUG=1): the run command is what a newcomer puts on a network, and a
# debug page shows a traceback and a settings dump to anyone.
DEBUG = env.bool("DEBUG", default=False)

if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
    _state = devservices.read_state(BASE_DIR)
    if _state is not None:
        DATABASES["default"].update(
            env.db_url_config(os.environ.get("DATABASE_URL", _state.database_url))
        )
        _redis = os.environ.get("REDIS_URL", _state.redis_url)
        CACHES["default"]["LOCATION"] = _redis
        CELERY_BROKER_URL = CELERY_RESULT_BACKEND = _redis

if DEBUG:
    # Static files straight from the apps, edits seen at once; otherwise the run command has
    # collected them into STATIC_ROOT and whitenoise serves them compressed, with cache headers.
    STATIC_ROOT = None
    WHITENOISE_USE_FINDERS = True
    WHITENOISE_AUTOREFRESH = True

# The run command serves uploaded product photos itself.
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
