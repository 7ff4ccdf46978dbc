"""Shared plumbing of the benchmark commands: throwaway services, timing, tables.

Benchmarks write thousands of rows and drop/rebuild indexes; they must never run against a
shop's catalog. By default a benchmark command re-runs itself as ``python -m
search.benchmarks <command> ...`` with the service variables removed: that process starts a
fresh PostgreSQL + Redis + media folder in a temporary directory (``config.devservices``),
runs the command under ``config.settings.test`` and deletes them at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from django.conf import settings
from django.core.management.base import CommandError

from config import devservices
from search.embeddings.clip import gpu_utilisation

TEST_SETTINGS = "config.settings.test"
# Anything that would point the throwaway settings at real services or a real media folder.
_SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MEDIA_ROOT",
)


def on_throwaway_services() -> bool:
    """True when this process started its own PostgreSQL/Redis and media folder
    (``config.devservices.start_ephemeral``) and the settings use them."""
    # The environment, not settings.SETTINGS_MODULE: overridden settings (tests) hide it.
    if os.environ.get("DJANGO_SETTINGS_MODULE") != TEST_SETTINGS:
        return False
    services = devservices.ephemeral()
    if services is None:
        return False
    url = urlsplit(services.database_url)
    db = settings.DATABASES["default"]
    return (str(db["HOST"]), str(db["PORT"])) == (url.hostname, str(url.port)) and Path(
        settings.MEDIA_ROOT
    ) == Path(services.media_root)


def ensure_throwaway(command: str) -> bool:
    """Decide where a benchmark runs. Returns True if the caller should run it here.

    Otherwise re-runs ``<command> ...`` (same arguments) on throwaway services, waits, and
    returns False.
    """
    if on_throwaway_services():
        return True
    if devservices.ephemeral() is not None:  # started here, yet the settings point elsewhere
        raise CommandError(f"{command}: the settings do not use this process's throwaway services")
    if sys.argv[1:2] != [command]:
        raise CommandError(
            f"{command} needs a database it can throw away: run it as "
            f"python -m search.benchmarks {command} ..."
        )
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARIABLES}
    code = subprocess.call(
        [sys.executable, "-m", "search.benchmarks", *sys.argv[1:]],
        cwd=settings.BASE_DIR,
        env=env,
    )
    if code:
        raise CommandError(f"the benchmark failed (exit status {code})")
    return False


def run_on_throwaway_services(argv: Sequence[str]) -> None:
    """``manage.py <argv>`` in this process, on fresh services started for it."""
    os.environ.update(devservices.start_ephemeral().environment())
    os.environ["DJANGO_SETTINGS_MODULE"] = TEST_SETTINGS
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *argv])


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(values.mean()), 2),
        "n": len(values),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (also valid Markdown), columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def json_write(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


class GpuBusy:
    """GPU utilisation sampled on a thread every ``interval`` seconds while the ``with``
    block runs (what issue 14 found at 2%: whether the model is fed, not how fast it is)."""

    def __init__(
        self, read: Callable[[], float | None] = gpu_utilisation, interval: float = 0.1
    ) -> None:
        self.read, self.interval = read, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-busy", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            value = self.read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> GpuBusy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(float(np.mean(self.samples)), 1) if self.samples else None
