"""``bench_http``: the shop under concurrent HTTP load, served the way the run command serves it
(gunicorn, DEBUG off) and, side by side in the same run, by Django's development server.

Everything is local: throwaway PostgreSQL + Redis (``harness.ensure_throwaway``), a demo
catalog seeded and indexed with the bundled demo model, servers on free loopback ports, client
threads in this process. Throttles are lifted for the servers under test (a benchmark measures
the server, not the 429 path).
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from config import devservices
from search.benchmarks import harness

DEMO_DIR = Path(settings.BASE_DIR) / "search" / "embeddings" / "weights" / "shop-clip-demo"
SCENARIOS = ("cached text", "unique text", "photo", "product page", "more like this")


@dataclass
class Target:
    """What the scenarios need from the seeded catalog."""

    slug: str
    product_id: int
    photo: bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment() -> dict[str, str]:
    services = devservices.ephemeral()
    assert services is not None, "bench_http runs on throwaway services"
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        **services.environment(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "SERVE_MEDIA": "1",
        "CLIP_MODEL": "shop-clip-demo",
        "CLIP_PRETRAINED": f"local-dir:{DEMO_DIR}",
        "SEARCH_THROTTLE_RATE": "1000000/min",
    }


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, check=True)


def seed(env: dict[str, str], products: int) -> Target:
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "seed_demo", "--if-empty", "--count", str(products))
    _manage(env, "index_catalog")
    code = (
        "import django, json; django.setup()\n"
        "from shop.models import Product\n"
        "p = Product.objects.filter(images__isnull=False).order_by('id').first()\n"
        "print(json.dumps([p.slug, p.id, p.images.first().image.path]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    slug, pk, path = json.loads(out.strip().splitlines()[-1])
    return Target(slug=slug, product_id=pk, photo=Path(path).read_bytes())


def server_command(kind: str, port: int, workers: int) -> list[str]:
    if kind == "gunicorn":
        # As scripts/run.sh starts it.
        return [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "2",
            "--timeout",
            "60",
            "--error-logfile",
            "-",
        ]
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]


def _multipart(photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    body.write(f"--{boundary}\r\n".encode())
    body.write(b'Content-Disposition: form-data; name="image"; filename="q.png"\r\n')
    body.write(b"Content-Type: image/png\r\n\r\n")
    body.write(photo)
    body.write(f"\r\n--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def scenario_requests(target: Target, base: str) -> dict[str, Callable[[], urllib.request.Request]]:
    photo_body, photo_type = _multipart(target.photo)
    get = urllib.request.Request
    return {
        "cached text": lambda: get(base + "/api/search/text/?q=red+sneakers"),
        # A new query each time: the text vector must be computed (the query cache misses).
        "unique text": lambda: get(
            base + f"/api/search/text/?q=red+sneakers+{uuid.uuid4().hex[:8]}"
        ),
        "photo": lambda: get(
            base + "/api/search/image/",
            data=photo_body,
            headers={"Content-Type": photo_type},
            method="POST",
        ),
        "product page": lambda: get(base + f"/products/{target.slug}/"),
        "more like this": lambda: get(base + f"/api/products/{target.product_id}/similar/"),
    }


def load(make: Callable[[], urllib.request.Request], *, clients: int, seconds: float) -> dict:
    """``clients`` threads send requests back to back for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(make(), timeout=60) as response:
                    response.read()
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
            except (urllib.error.URLError, OSError) as exc:  # HTTPError (4xx/5xx) included
                with lock:
                    errors.append(type(exc).__name__ + ": " + str(exc)[:80])

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    values = np.asarray(latencies or [0.0]) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
    }


def _wait_until_serving(base: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            urllib.request.urlopen(base + "/", timeout=5).read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise RuntimeError("the server did not start serving in time")


def run(*, servers: list[str], clients: int, seconds: float, products: int, workers: int) -> dict:
    env = server_environment()
    target = seed(env, products)
    results: dict[str, dict[str, dict]] = {}
    for kind in servers:
        port = _free_port()
        process = subprocess.Popen(
            server_command(kind, port, workers),
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        requests = scenario_requests(target, base)
        try:
            _wait_until_serving(base, process)
            for name in SCENARIOS:
                # Warm every worker (model loaded, caches filled) before measuring.
                load(requests[name], clients=clients, seconds=min(2.0, seconds))
                results.setdefault(name, {})[kind] = load(
                    requests[name], clients=clients, seconds=seconds
                )
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    return {
        "clients": clients,
        "seconds": seconds,
        "products": products,
        "gunicorn_workers": workers,
        "cores": os.cpu_count(),
        "results": results,
    }


def report(payload: dict) -> str:
    rows = []
    for name, by_server in payload["results"].items():
        for kind, r in by_server.items():
            ratio = r["p99_ms"] / r["p50_ms"] if r["p50_ms"] else 0.0
            rows.append(
                [name, kind, r["rps"], r["p50_ms"], r["p95_ms"], r["p99_ms"], ratio, r["errors"]]
            )
    lines = [
        harness.table(
            ["scenario", "server", "req/s", "p50 ms", "p95 ms", "p99 ms", "p99/p50", "errors"],
            rows,
        )
    ]
    cached = payload["results"].get("cached text", {})
    if "gunicorn" in cached and "runserver" in cached and cached["runserver"]["rps"]:
        lines.append(
            f"cached text throughput, gunicorn / development server: "
            f"{cached['gunicorn']['rps'] / cached['runserver']['rps']:.2f}x"
        )
    return "\n".join(lines)
