#!/usr/bin/env bash
# Run every test: unit, integration (embedded PostgreSQL+pgvector, Redis, Celery worker
# processes) and browser (headless Chromium). The tests start and stop all services.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { echo "ruff format would change files: run .venv/bin/ruff format ." >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
