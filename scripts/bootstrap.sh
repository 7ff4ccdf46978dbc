#!/usr/bin/env bash
# Install what the project needs on a fresh Debian/Ubuntu machine with Python 3.11.
# Usage: scripts/bootstrap.sh run|test    (sourced or executed; idempotent and quick when done)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
purpose="${1:-run}"

apt_wanted=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_wanted+=(dataset-fashion-mnist)
if [ "$purpose" = test ]; then
  command -v chromium >/dev/null 2>&1 || apt_wanted+=(chromium)
  command -v npm >/dev/null 2>&1 || apt_wanted+=(npm)
fi
if [ ${#apt_wanted[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: apt-get install ${apt_wanted[*]}"
    apt-get update -qq >/dev/null
    # The dataset package is optional: without it the demo downloads the same files.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_wanted[@]}" >/dev/null \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "bootstrap: apt-get failed; continuing" >&2
  else
    echo "bootstrap: please install: ${apt_wanted[*]} (needs root)" >&2
  fi
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
reqs=requirements.txt
[ "$purpose" = test ] && reqs=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -c1-16)-$purpose"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: pip install -r $reqs (torch CPU build pinned by constraints.txt)"
  .venv/bin/pip install -q --disable-pip-version-check -r "$reqs" -c constraints.txt
  touch "$stamp"
fi

# Test-only JavaScript (axe-core for the accessibility checks; openapi-typescript and tsc for
# the TypeScript client types), pinned by package-lock.json. The stamp names the lock file's
# hash, so a changed lock reinstalls (npm ci empties node_modules, stamp included).
npm_stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ "$purpose" = test ] && [ ! -f "$npm_stamp" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "bootstrap: npm ci (axe-core, openapi-typescript, typescript)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    touch "$npm_stamp"
  else
    echo "bootstrap: npm not found; install Node.js (apt-get install npm) for the accessibility and TypeScript tests" >&2
  fi
fi
