"""``python -m search.benchmarks <command> [options]``: a management command (a benchmark or
``evaluate_search``) on a fresh PostgreSQL + Redis + media folder, deleted at exit.

Nothing Django is imported before the services are up: the settings read their URLs from
the environment this sets.
"""

import sys

from search.benchmarks.harness import run_on_throwaway_services

if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m search.benchmarks bench_search|bench_indexing|...")
    run_on_throwaway_services(sys.argv[1:])
