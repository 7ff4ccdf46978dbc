import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import compose
import yaml

ROOT = Path(__file__).resolve().parents[2]
# A key the production settings take: 64 characters, 33 different.
PRODUCTION_KEY = "a-long-random-production-secret-" + "k7Qz" * 8


def _compose_config(compose_file: Path, **env: str) -> subprocess.CompletedProcess:
    binary = Path(compose.__file__).parent / "docker-compose"
    child_env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | env
    return subprocess.run(
        [str(binary), "-f", str(compose_file), "config", "-q"],
        capture_output=True,
        text=True,
        env=child_env,
    )


def test_docker_compose_file_is_valid():
    result = _compose_config(ROOT / "docker-compose.yml", SECRET_KEY=PRODUCTION_KEY)
    assert result.returncode == 0, result.stderr


def test_compose_has_no_default_secret_key(tmp_path):
    # Copied away from the checkout, so a developer's own .env cannot supply one.
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    result = _compose_config(tmp_path / "docker-compose.yml")
    assert result.returncode != 0
    assert "required variable SECRET_KEY is missing a value" in result.stderr
    assert "set SECRET_KEY to 50+ random characters" in result.stderr


def test_compose_has_db_redis_web_and_a_gpu_worker():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert services["db"]["image"] == "pgvector/pgvector:pg17"
    assert services["redis"]["image"] == "redis:7"
    gpu = services["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert "embeddings" in gpu["command"]
    # One scheduler of its own; no worker embeds a beat (-B) that a kill would orphan.
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert not any("-B" in (svc.get("command") or []) for svc in services.values())


def test_broken_compose_file_is_rejected(tmp_path):
    binary = Path(compose.__file__).parent / "docker-compose"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    ports: 8000\n    depends_on: [nothing]\n")
    result = subprocess.run([str(binary), "-f", str(broken), "config", "-q"], capture_output=True)
    assert result.returncode != 0


def _django_child(module: str, code: str, **env: str) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if k not in ("SERVE_MEDIA", "DEBUG")}
    # URLs given, so the child never starts or reads the embedded services.
    child_env.update(
        DJANGO_SETTINGS_MODULE=module,
        DATABASE_URL="postgres://u:p@127.0.0.1:1/x",
        REDIS_URL="redis://127.0.0.1:1/0",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env, capture_output=True, text=True
    )


def _settings_probe(module: str, **env: str) -> dict:
    """Import a settings module and its URLs in a fresh process, as the run command does."""
    code = """
import json, django
django.setup()
from django.conf import settings
from django.urls import Resolver404, resolve
try:
    media_view = resolve("/media/products/x.png").func.__name__
except Resolver404:
    media_view = None
print(json.dumps({"debug": settings.DEBUG, "serve_media": settings.SERVE_MEDIA,
                  "media_view": media_view}))
"""
    out = _django_child(module, code, **env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_run_command_settings_serve_product_photos():
    # The run command uses config.settings.local: photos must load without a web server.
    local = _settings_probe("config.settings.local")
    # DEBUG off by default (production behaviour), and photos are still served.
    assert local == {"debug": False, "serve_media": True, "media_view": "serve"}


def test_production_settings_leave_media_to_the_web_server():
    prod = _settings_probe("config.settings.production", DEBUG="false", SECRET_KEY=PRODUCTION_KEY)
    assert prod == {"debug": False, "serve_media": False, "media_view": None}


def test_production_settings_turn_debug_off_whatever_the_environment_says():
    prod = _settings_probe("config.settings.production", DEBUG="true", SECRET_KEY=PRODUCTION_KEY)
    assert prod == {"debug": False, "serve_media": False, "media_view": None}


def test_production_settings_pass_djangos_deployment_checks():
    out = _django_child(
        "config.settings.production",
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check', deploy=True, tags=['security'], fail_level='WARNING')",
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="shop.example.com",
        CSRF_TRUSTED_ORIGINS="https://shop.example.com",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        # A site's own decision (every subdomain on HTTPS too), so off by default.
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    assert out.returncode == 0, out.stderr


def test_production_settings_refuse_the_development_secret_key():
    out = _django_child("config.settings.production", "import django; django.setup()")
    assert out.returncode != 0
    assert "Set SECRET_KEY" in out.stderr


def test_production_settings_refuse_weak_secret_keys():
    # Django's check --deploy only warns (W009) about these; production stops with a reason.
    for weak, described in [
        ("change-me", "9 characters"),
        ("k7Qz" * 12, "48 characters"),
        ("x" * 50, "1 different"),
        ("django-insecure-" + "k7Qz" * 10, "56 characters"),
    ]:
        out = _django_child(
            "config.settings.production", "import django; django.setup()", SECRET_KEY=weak
        )
        assert out.returncode != 0, weak
        assert "ImproperlyConfigured: Set SECRET_KEY" in out.stderr, out.stderr[-500:]
        assert described in out.stderr and "at least 50 random characters" in out.stderr
        assert weak not in out.stderr  # the message never echoes a key


def test_a_crash_under_production_settings_shows_the_500_page_without_internals():
    # A view that raises, on a page path and an API path, through the whole middleware stack:
    # the shopper sees templates/500.html, the traceback goes to the log (stderr) only.
    code = """
import json, sys, types, django
django.setup()
from django.test import Client
from django.test.utils import override_settings
from django.urls import path
from rest_framework.decorators import api_view
import config.urls

def boom(request):
    raise RuntimeError("internal-detail-7f3a")

urls = types.ModuleType("crash_urls")
urls.urlpatterns = [path("boom/", boom), path("api/v1/boom/", api_view(["GET"])(boom)),
                    *config.urls.urlpatterns]
sys.modules["crash_urls"] = urls
answers = {}
with override_settings(ROOT_URLCONF="crash_urls"):
    for url in ("/boom/", "/api/v1/boom/"):
        r = Client(raise_request_exception=False).get(url, secure=True)
        answers[url] = [r.status_code, r["Content-Type"], r.content.decode()]
print(json.dumps(answers))
"""
    out = _django_child(
        "config.settings.production",
        code,
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="testserver",
        DEBUG="true",  # ignored by production: still no debug page
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answers = json.loads(out.stdout.strip().splitlines()[-1])
    for url, (status, content_type, body) in answers.items():
        assert status == 500, url
        assert content_type.startswith("text/html"), url
        assert "Something went wrong on our side" in body, url
        for internal in (
            "internal-detail-7f3a",
            "RuntimeError",
            "Traceback",
            "SECRET_KEY",
            "DJANGO_SETTINGS_MODULE",
            "config.settings",
            "crash_urls",
            "site-packages",
        ):
            assert internal not in body, (url, internal)
    assert out.stderr.count("RuntimeError: internal-detail-7f3a") == 2  # logged for the team


def test_the_docker_build_step_gets_a_key_production_takes():
    # The Dockerfile's collectstatic runs under the production settings with no real secret.
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    line = next(x for x in dockerfile.splitlines() if x.startswith("RUN") and "collectstatic" in x)
    command = line.removeprefix("RUN ") + " --dry-run -v 0"
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DATABASE_URL="postgres://u:p@127.0.0.1:1/x",
        REDIS_URL="redis://127.0.0.1:1/0",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",  # "python": the venv's
    )
    out = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1000:]


def test_docker_image_and_compose_run_the_production_settings():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in dockerfile
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "worker", "gpu-worker"):
        env = spec["services"][name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name


def test_test_settings_start_nothing_on_import():
    code = (
        "import os; os.environ.pop('DATABASE_URL', None); os.environ.pop('MEDIA_ROOT', None); "
        "import config.settings.test as t, config.devservices as d; "
        "print(d.ephemeral(), t.DATABASES['default']['PORT'])"
    )
    out = _django_child("config.settings.test", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "5432"]  # base.py's default: nothing was started


def test_an_out_of_range_hybrid_weight_stops_startup_with_a_reason():
    out = _django_child(
        "config.settings.local", "import django; django.setup()", SEARCH_HYBRID_TEXT_WEIGHT="1.5"
    )
    assert out.returncode != 0
    assert "SEARCH_HYBRID_TEXT_WEIGHT=1.5 is outside 0..1" in out.stderr


def test_run_command_refuses_a_busy_port_with_a_reason():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env={**os.environ, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"port {port} is already in use" in out.stderr
    assert "serving on" not in out.stdout  # nothing was started


@contextlib.contextmanager
def _run_command(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``bash scripts/run.sh`` with its own services and settings, once it serves; killed
    with its services afterwards if a test left it running."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path / "run.log"
    log = log_path.open("w+")
    env = {**os.environ, "PORT": str(port), "DEMO_PRODUCTS": "4"}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT"):
        env.pop(name, None)  # the run command's own services and settings, not the tests'
    run = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while "serving on" not in log_path.read_text():
            assert run.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "run.sh did not start serving"
            time.sleep(0.5)
        while True:  # "serving on" comes just before the server binds
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert run.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        yield run, f"http://127.0.0.1:{port}"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)  # the server and worker too, not only bash
            subprocess.run([sys.executable, "-m", "config.devservices", "stop"], cwd=ROOT)


def _assert_stopped_cleanly(run: subprocess.Popen) -> None:
    time.sleep(1)
    left = subprocess.run(
        ["ps", "-o", "pid=,args=", "-g", str(run.pid)], capture_output=True, text=True
    ).stdout
    assert left.strip() == "", left  # nothing orphaned: no gunicorn, worker or beat
    state = ROOT / ".data" / "services.json"
    assert not state.exists(), "the services the run command started were left running"


def test_run_command_serves_production_settings_and_stops_cleanly_on_sigterm(tmp_path):
    # What a newcomer's first command puts on the network: gunicorn, DEBUG off (a 404 names no
    # URL patterns), static files served, beat as its own process. Then a supervisor or
    # `timeout` stops it with SIGTERM: server, worker, beat and the services it started go.
    with _run_command(tmp_path) as (run, base):
        try:
            urllib.request.urlopen(base + "/no-such-page/", timeout=30)
            raise AssertionError("a missing page answered 200")
        except urllib.error.HTTPError as missing:
            body = missing.read().decode()
            assert missing.code == 404
            assert missing.headers["Server"].startswith("gunicorn"), missing.headers["Server"]
        assert "Page not found" in body
        assert "URLconf" not in body and "DEBUG" not in body  # no debug page
        static = urllib.request.urlopen(base + "/static/admin/css/base.css", timeout=30)
        assert static.status == 200 and "max-age" in static.headers["Cache-Control"]
        children = subprocess.run(
            ["ps", "-o", "args=", "-g", str(run.pid)], capture_output=True, text=True
        ).stdout
        assert "celery -A config beat" in children and " -B " not in children, children
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) != 0
    _assert_stopped_cleanly(run)


def test_run_command_stops_cleanly_on_ctrl_c(tmp_path):
    # Ctrl-C in a terminal: SIGINT to the whole foreground group (bash, gunicorn, worker, beat)
    # at once. About 25 s once the checkout has its services' data and demo catalog.
    with _run_command(tmp_path) as (run, base):
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 130  # bash's own exit for SIGINT, after its cleanup
    _assert_stopped_cleanly(run)
