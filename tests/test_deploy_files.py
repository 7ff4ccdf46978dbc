import subprocess
from pathlib import Path

import compose
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_docker_compose_file_is_valid():
    binary = Path(compose.__file__).parent / "docker-compose"
    result = subprocess.run(
        [str(binary), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_compose_has_db_redis_web_and_a_gpu_worker():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert services["db"]["image"] == "pgvector/pgvector:pg17"
    assert services["redis"]["image"] == "redis:7"
    gpu = services["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert "embeddings" in gpu["command"]


def test_broken_compose_file_is_rejected(tmp_path):
    binary = Path(compose.__file__).parent / "docker-compose"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    ports: 8000\n    depends_on: [nothing]\n")
    result = subprocess.run([str(binary), "-f", str(broken), "config", "-q"], capture_output=True)
    assert result.returncode != 0
