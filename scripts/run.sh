#!/usr/bin/env bash
# Run the shop at http://127.0.0.1:${PORT:-8000}: installs, starts PostgreSQL+pgvector and
# Redis (unless DATABASE_URL/REDIS_URL are set), migrates, seeds a demo catalog, indexes it,
# starts a Celery worker (both queues) and beat (the periodic sweep), and serves with gunicorn,
# DEBUG off (DEBUG=1 serves with Django's autoreloading development server instead).
# Ctrl-C or SIGTERM stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh run
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE=config.settings.local
mkdir -p .data
# Production behaviour by default (no debug pages, no settings dump, a real server); DEBUG=1 is
# the opt-in for development.
case "${DEBUG:-0}" in 1|true|True|yes|on) debug=1 ;; *) debug=0 ;; esac
export DEBUG="$debug"
if [ -z "${SECRET_KEY:-}" ]; then
  # One key per checkout, kept across restarts (sessions and CSRF tokens stay valid).
  if [ ! -s .data/secret_key ]; then
    (umask 077 && $PY -c "import secrets; print(secrets.token_urlsafe(50))" >.data/secret_key)
  fi
  SECRET_KEY="$(cat .data/secret_key)"
  export SECRET_KEY
fi
PORT="${PORT:-8000}"

# Fail before starting anything if the port is taken (runserver would only say so at the end,
# while whatever holds the port keeps answering).
if ! $PY -c "import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$PORT" 2>/dev/null; then
  echo "run: port $PORT is already in use (another copy of the shop?). Stop it, or choose another port: PORT=8001 bash scripts/run.sh" >&2
  exit 2
fi

started_services=0
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  eval "$($PY -m config.devservices start)"
  started_services=1
fi

DEMO_DIR="$PWD/search/embeddings/weights/shop-clip-demo"
if [ -z "${CLIP_MODEL:-}${CLIP_PRETRAINED:-}" ]; then
  # Stock CLIP if its weights are already on this machine; otherwise the bundled demo model.
  if HF_HUB_OFFLINE=1 $PY manage.py clip_check >/dev/null 2>&1; then
    echo "run: using ViT-B-32 (laion2b_s34b_b79k) from the local cache"
  else
    echo "run: pretrained CLIP weights not available offline; using the bundled demo model"
    export CLIP_MODEL=shop-clip-demo CLIP_PRETRAINED="local-dir:$DEMO_DIR"
    # The demo model's best measured hybrid split (README "Measured quality").
    export SEARCH_HYBRID_TEXT_WEIGHT="${SEARCH_HYBRID_TEXT_WEIGHT:-0.3}"
  fi
fi
$PY manage.py clip_check

$PY manage.py migrate --noinput -v 0
[ "$debug" = 1 ] || $PY manage.py collectstatic --noinput -v 0
$PY manage.py seed_demo --if-empty --count "${DEMO_PRODUCTS:-300}"
$PY manage.py index_catalog
if ! $PY manage.py shell -c "from django.contrib.auth import get_user_model as g; raise SystemExit(g().objects.filter(username='admin').exists())"; then
  :
else
  DJANGO_SUPERUSER_PASSWORD="${ADMIN_PASSWORD:-admin}" $PY manage.py createsuperuser --noinput --username admin --email admin@example.com
  echo "run: admin user 'admin' / '${ADMIN_PASSWORD:-admin}' at /admin/"
fi

# The queues the settings route to: default, and EMBEDDING_QUEUE (config/settings/base.py).
$PY -m celery -A config worker -Q "default,${EMBEDDING_QUEUE:-embeddings}" --pool solo --loglevel INFO \
  >.data/worker.log 2>&1 &
worker_pid=$!
# Beat is its own process, not the worker's -B child: a killed worker cannot leave an orphaned
# beat behind that schedules the sweep twice once a new worker starts.
$PY -m celery -A config beat --loglevel INFO --schedule .data/celerybeat-schedule >.data/beat.log 2>&1 &
beat_pid=$!
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  kill "$worker_pid" "$beat_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$started_services" = 1 ] && [ "${KEEP_SERVICES:-0}" = 0 ]; then $PY -m config.devservices stop; fi
}
trap cleanup EXIT
# The server runs in the background and the script waits on it: bash runs a trap only once the
# foreground command ends, so SIGTERM (a supervisor, `timeout`) would otherwise do nothing.
trap 'exit 143' TERM
trap 'exit 130' INT
echo "run: worker log in .data/worker.log; serving on http://127.0.0.1:$PORT"
if [ "$debug" = 1 ]; then
  $PY manage.py runserver "127.0.0.1:$PORT" &
else
  # Workers from the cores (WEB_CONCURRENCY overrides), at most 4: each loads its own CLIP
  # model. Torch gets the cores divided among them instead of every worker taking them all.
  cores=$(nproc 2>/dev/null || echo 2)
  workers="${WEB_CONCURRENCY:-$(( cores < 4 ? cores : 4 ))}"
  export CLIP_TORCH_THREADS="${CLIP_TORCH_THREADS:-$(( cores / workers > 0 ? cores / workers : 1 ))}"
  .venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$PORT" --workers "$workers" --threads 2 \
    --timeout "${GUNICORN_TIMEOUT:-60}" --graceful-timeout 10 --access-logfile .data/access.log \
    --error-logfile - &
fi
server_pid=$!
wait "$server_pid"
