"""Settings shared by every environment; the settings variables are read here (README "Configuration"
says which few are also read elsewhere, and tests/test_docs.py checks the list)."""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served by the app itself, no CDN (/api/docs/)
    "corsheaders",
    "shop",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    # Before anything that may answer: a preflight or an error still carries the CORS headers.
    "corsheaders.middleware.CorsMiddleware",
    # Before anything reads the body; inside CORS, so a refusal still carries its headers.
    "config.middleware.RequestBodyLimitMiddleware",
    "config.middleware.ApiNotFoundMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.login_guard.LoginLockoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "config.middleware.RejectNulMiddleware",
]

# Scripts only from the site's own files (config/csp.py has the default and why); "" turns the
# header off, e.g. when a proxy in front sets its own.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
)

# Wrong passwords lock an address out of sign-in for a while (config/login_guard.py).
AUTHENTICATION_BACKENDS = ["config.login_guard.LockoutModelBackend"]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Reverse proxies in front of the app that append to X-Forwarded-For. 0: the header is ignored
# (anyone can send it), and the client address is REMOTE_ADDR.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# DATABASE_URL / REDIS_URL: set by docker-compose or production. On a bare machine the
# run command (scripts/run.sh) and the test session (tests/conftest.py) start embedded services
# and set them (config.devservices).
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/shop")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        # django-redis with a circuit breaker (config/cache.py).
        "BACKEND": "config.cache.BreakerRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            # A stopped Redis must not take search down: the cache degrades to a miss, and
            # after a failure Redis is skipped for BACKOFF_SECONDS instead of timing out on
            # every call.
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            "BACKOFF_SECONDS": env.float("CACHE_BACKOFF_SECONDS", default=10.0),
        },
    }
}
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Celery -------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Embedding work goes to its own queue so GPU workers consume only that.
EMBEDDING_QUEUE = env("EMBEDDING_QUEUE", default="embeddings")
CELERY_TASK_ROUTES = {
    "search.tasks.embed_images": {"queue": EMBEDDING_QUEUE},
    "search.tasks.embed_product_texts": {"queue": EMBEDDING_QUEUE},
    "search.tasks.train_clip": {"queue": EMBEDDING_QUEUE},
}
# A worker killed mid-batch must not lose the batch: ack after the work, requeue on loss.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing fails fast when Redis is down (well under a second; the broker-down tests in
# tests/search/services/test_indexing.py and tests/search/test_resilience.py take it down): the
# save still succeeds and the sweep picks the work up later. The broker: one connection attempt (max_retries below), a 1 s connect
# timeout (a host that drops packets would otherwise hang for the OS's minutes), no publish
# retry. The result backend: embedding tasks are published with ignore_result (nobody reads
# their results), so the save never waits on it; for the tasks whose result is read (the
# sweep, training) a dead backend costs about a second, not the default 20 retries 1 s apart.
# A worker still reconnects to a restarted broker (broker_connection_retry, unchanged).
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 1
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
}
# visibility_timeout: Redis hands a message that a killed worker had taken (acks_late) to
# another worker only after this many seconds. It must exceed the longest task run
# (CELERY_TASK_TIME_LIMIT) and the longest retry countdown (300 s), or a slow batch is
# delivered a second time while the first worker is still on it.
BROKER_VISIBILITY_TIMEOUT = env.int("BROKER_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "socket_connect_timeout": 1,
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE = {
    "sweep-pending-embeddings": {
        "task": "search.tasks.sweep_pending",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=60.0),
    }
}

# --- CLIP / search --------------------------------------------------------------------
CLIP_MODEL = env("CLIP_MODEL", default="ViT-B-32")
CLIP_PRETRAINED = env("CLIP_PRETRAINED", default="laion2b_s34b_b79k")
CLIP_DEVICE = env("CLIP_DEVICE", default="auto")  # auto = cuda, then mps, then cpu
CLIP_BATCH_SIZE = env.int("CLIP_BATCH_SIZE", default=32)
CLIP_CACHE_DIR = env("CLIP_CACHE_DIR", default=None)
# Load the configured model and run one dummy batch when a worker process starts, so the
# first task does not pay seconds of loading.
CLIP_WARMUP = env.bool("CLIP_WARMUP", default=True)
# torch intra-op threads per process; 0 = torch's default (all cores). Processes sharing
# cores (web workers, several Celery workers) should use cores / processes.
CLIP_TORCH_THREADS = env.int("CLIP_TORCH_THREADS", default=0)
# Models a process keeps loaded (least recently used is dropped): 2 covers a model switch,
# when search still answers from the old model while workers index with the new one.
CLIP_MAX_LOADED_MODELS = env.int("CLIP_MAX_LOADED_MODELS", default=2)
# Default text share of "this, but ..." queries (the photo gets the rest). Measured with
# `evaluate_search` on the held-out demo catalog, precision is flat from 0.2 to 0.5 with the
# demo model (best near 0.3, which is what run.sh sets for it). Stock CLIP has a wide modality
# gap (text vectors sit farther from image vectors than images from each other), so a word needs
# a larger share to move a photo query: 0.5 is the default for it. Re-measure for your model.
SEARCH_HYBRID_TEXT_WEIGHT = env.float("SEARCH_HYBRID_TEXT_WEIGHT", default=0.5)
if not 0.0 <= SEARCH_HYBRID_TEXT_WEIGHT <= 1.0:
    raise ImproperlyConfigured(
        f"SEARCH_HYBRID_TEXT_WEIGHT={SEARCH_HYBRID_TEXT_WEIGHT} is outside 0..1: it is the text "
        "share of a photo + text query (the photo gets 1 - it)."
    )
SEARCH_DEFAULT_LIMIT = env.int("SEARCH_DEFAULT_LIMIT", default=24)
SEARCH_MAX_LIMIT = env.int("SEARCH_MAX_LIMIT", default=100)
# Terms a hybrid query may have, text and photos and products each: every text term costs an
# encoder call and a cache entry (thousands kept a worker busy for minutes, issue 12).
SEARCH_MAX_TERMS = env.int("SEARCH_MAX_TERMS", default=16)
# Text search fuses a keyword leg (PostgreSQL full text) and the vector leg by reciprocal
# rank: a product scores sum(weight / (SEARCH_RRF_K + rank)) over the legs that found it.
# k = 60 is the value of the RRF paper and of Elasticsearch/OpenSearch; equal weights until an
# evaluation (evaluate_search, tuning suites only) says otherwise.
SEARCH_RRF_K = env.float("SEARCH_RRF_K", default=60.0)
SEARCH_KEYWORD_WEIGHT = env.float("SEARCH_KEYWORD_WEIGHT", default=1.0)
SEARCH_VECTOR_WEIGHT = env.float("SEARCH_VECTOR_WEIGHT", default=1.0)
# "This, but as a boot": the share of its weight the photo or product keeps when the modifier
# changes the category (the text then names the look's colour and the new category).
SEARCH_CATEGORY_CHANGE_LOOK_SHARE = env.float("SEARCH_CATEGORY_CHANGE_LOOK_SHARE", default=0.5)
# Candidates each leg contributes to the fusion (at least a page's worth).
SEARCH_FUSION_CANDIDATES = env.int("SEARCH_FUSION_CANDIDATES", default=100)
# How long a process trusts its cached lexicon (categories, colours, synonyms); an edit of a
# synonym in the admin clears it at once.
SEARCH_LEXICON_SECONDS = env.int("SEARCH_LEXICON_SECONDS", default=60)
# A query is "no close match" when its best similarity is below this share of in-catalog
# queries' best similarities (per model, search/services/relevance.py): about this share of
# in-catalog queries is flagged by construction; raise it to flag more out-of-domain ones.
SEARCH_CLOSE_MATCH_QUANTILE = env.float("SEARCH_CLOSE_MATCH_QUANTILE", default=0.04)
# Dotted path of the vector store class (search/vectorstore/base.py says what it must do).
SEARCH_VECTOR_STORE = env(
    "SEARCH_VECTOR_STORE", default="search.vectorstore.pgvector.PgVectorStore"
)
# Item detection (search/detection/): "foreground" (weightless, the photo's border is the
# background), "trained" (the project's own small detector), "torchvision:<model name>" or a
# dotted path to a class with detect(image, max_items=...).
DETECTOR = env("DETECTOR", default="foreground")
# Weights of the trained detector (a detector.safetensors; empty: the shipped ones) or of a
# torchvision model (empty/DEFAULT: its pretrained COCO weights, a weights enum name, a
# checkpoint path, or "none" for random weights).
DETECTOR_WEIGHTS = env("DETECTOR_WEIGHTS", default="")
DETECTOR_MAX_ITEMS = env.int("DETECTOR_MAX_ITEMS", default=8)  # items per photo, largest first
HNSW_M = env.int("HNSW_M", default=16)
HNSW_EF_CONSTRUCTION = env.int("HNSW_EF_CONSTRUCTION", default=64)
# 200: recall@10 0.99 vs 0.95 at 100 on 100k vectors, same latency (README "Benchmarks").
HNSW_EF_SEARCH = env.int("HNSW_EF_SEARCH", default=200)
# A filtered search that PostgreSQL estimates matches at most this many products (in a
# catalog of 100,000; scaled by the square root of the catalog's size) scores them all
# exactly instead of walking the HNSW graph: the crossover measured in README "Benchmarks"
# (exact faster at 3,006 matches, the graph at 8,459); 0: always the graph.
SEARCH_EXACT_SCAN_MAX_PRODUCTS = env.int("SEARCH_EXACT_SCAN_MAX_PRODUCTS", default=5_000)
# A category with at least this many of a model's vectors (per table) gets an HNSW graph of
# its own, which a search filtered on that category walks (README "Benchmarks": 300k
# products, a 10% category, filtered p95 106 -> 11 ms); 0: none. Each costs its share of the
# whole graph again in disk and memory.
SEARCH_CATEGORY_GRAPH_MIN_VECTORS = env.int("SEARCH_CATEGORY_GRAPH_MIN_VECTORS", default=20_000)
EMBEDDING_SWEEP_BATCH = env.int("EMBEDDING_SWEEP_BATCH", default=256)
QUERY_CACHE_SECONDS = env.int("QUERY_CACHE_SECONDS", default=24 * 3600)

SEARCH_THROTTLE_RATE = env("SEARCH_THROTTLE_RATE", default="120/min")
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 24,
    # JSON nested past REQUEST_MAX_JSON_DEPTH is a 400 with a message (shop/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "shop.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Who a client is behind proxies (config.proxies.client_address reads the same setting).
    "NUM_PROXIES": NUM_PROXIES,
    # One budget per client and search mode, pages and API alike (search/api/throttling.py);
    # "search" is the rate of every mode not given its own.
    "DEFAULT_THROTTLE_RATES": {
        "search": SEARCH_THROTTLE_RATE,
        "search_text": env("SEARCH_TEXT_THROTTLE_RATE", default=SEARCH_THROTTLE_RATE),
        "search_photo": env("SEARCH_PHOTO_THROTTLE_RATE", default=SEARCH_THROTTLE_RATE),
        "search_look": env("SEARCH_LOOK_THROTTLE_RATE", default=SEARCH_THROTTLE_RATE),
        "search_describe": env("SEARCH_DESCRIBE_THROTTLE_RATE", default=SEARCH_THROTTLE_RATE),
        "search_similar": env("SEARCH_SIMILAR_THROTTLE_RATE", default=SEARCH_THROTTLE_RATE),
        "search_suggest": env("SEARCH_SUGGEST_THROTTLE_RATE", default=SEARCH_THROTTLE_RATE),
    },
    "EXCEPTION_HANDLER": "search.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Visual Shop Search API",
    "DESCRIPTION": "Text, photo and hybrid CLIP search over the catalog.",
    "VERSION": "1.0.0",
    # Only /api/v1/: the unversioned aliases would give a generated client every operation
    # twice; the schema's own endpoint is not an operation a client calls.
    "PREPROCESSING_HOOKS": ["search.api.schema.versioned_only"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "search.api.schema.multipart_bodies_optional",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Browsers on other origins may call the API (never the pages) from these origins only, e.g.
# "https://shop.example,https://m.shop.example". None by default.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# Scripts on those origins may read the rate-limit headers and paging answers.
CORS_EXPOSE_HEADERS = [
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "Deprecation",
    "Link",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # open_clip logs every load step on the root logger at INFO: keep the root at WARNING.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {
            "handlers": ["console"],
            "level": env("LOG_LEVEL", default="INFO"),
            "propagate": False,
        }
        for name in ("search", "shop")
    },
}
SEARCH_MAX_UPLOAD_BYTES = env.int("SEARCH_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
# Pixels a PNG, WebP, GIF, BMP or TIFF may have: PIL decodes them whole (only JPEG decodes at
# a reduced scale), so this bounds their memory (16 Mpx RGBA: 64 MB) and decode time.
IMAGE_MAX_FULL_DECODE_PIXELS = env.int("IMAGE_MAX_FULL_DECODE_PIXELS", default=16_000_000)
# Any request body (JSON, form or multipart, API and pages): past it a 413 naming the limit,
# before the body is read (config/middleware.py). The photo limit plus room for the form.
REQUEST_MAX_BODY_BYTES = env.int(
    "REQUEST_MAX_BODY_BYTES", default=SEARCH_MAX_UPLOAD_BYTES + 1024 * 1024
)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
# Nesting levels a JSON body may have (the deepest request, hybrid search, needs 3).
REQUEST_MAX_JSON_DEPTH = env.int("REQUEST_MAX_JSON_DEPTH", default=16)
# One decode process per core this process may run on: the feed reaches 0.86x the cores'
# worth of one-at-a-time decoding with as many processes as cores and 0.77x with twice as
# many, which share the cores with the parent (README "Benchmarks", 2 cores).
CLIP_DECODE_WORKERS = env.int("CLIP_DECODE_WORKERS", default=len(os.sched_getaffinity(0)))
# Where the indexing pipeline decodes and preprocesses photos: "processes" (a spawned pool,
# kept for the process's life; decoding holds the GIL, so threads stop scaling at about one
# core) or "threads" (also used for CLIP_DECODE_WORKERS <= 1).
CLIP_DECODE_POOL = env("CLIP_DECODE_POOL", default="processes")
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=DEBUG)
# Uploads up to the search limit stay in memory, so a query photo never touches the disk.
# Django compares the whole request body (photo, multipart framing, the other fields) with
# this, so it allows 64 KiB above the photo limit (tests/search/test_search_inputs.py).
FILE_UPLOAD_MAX_MEMORY_SIZE = SEARCH_MAX_UPLOAD_BYTES + 64 * 1024
