"""The periodic sweep fires on its schedule (Celery beat in a real worker process) and queues
what is still missing: an image whose embedding task was lost."""

import os
import re
import signal
import subprocess
import sys
from datetime import datetime

import pytest
import redis
from django.conf import settings

from tests.outage import queued_image_ids
from tests.workers import ROOT, wait_for, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_beat_runs_the_sweep_on_schedule_and_it_requeues_lost_work(make_product, tmp_path):
    product = make_product("Lost", colours=[(0, 120, 200)])
    image_id = product.images.get().pk
    # The save queued its task; lose it, as a broker restart without persistence would.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(settings.EMBEDDING_QUEUE)
    assert image_id not in queued_image_ids(settings.EMBEDDING_QUEUE)

    log_path = tmp_path / "worker.log"
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-Q", "default"]
    cmd += ["--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    cmd += ["--schedule", str(tmp_path / "beat-schedule"), "-n", f"beat-{os.getpid()}@%h"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=worker_env(SWEEP_INTERVAL_SECONDS="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        sweeps = re.compile(r"search\.tasks\.sweep_pending\[.*\] succeeded in .*'images': 1")
        wait_for(
            lambda: len(sweeps.findall(log_path.read_text())) >= 2,
            timeout=30,
            message="two sweeps, one second apart",
        )
        wait_for(lambda: image_id in queued_image_ids(settings.EMBEDDING_QUEUE), timeout=5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    sent = [
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
        for stamp in re.findall(
            r"\[([\d-]+ [\d:,]+): INFO/\w+\] Scheduler: Sending due task "
            r"sweep-pending-embeddings \(search\.tasks\.sweep_pending\)",
            log_path.read_text(),
        )
    ]
    assert len(sent) >= 2, log_path.read_text()[-3000:]
    gaps = [(b - a).total_seconds() for a, b in zip(sent, sent[1:], strict=False)]
    assert all(0.5 <= gap <= 3 for gap in gaps), gaps  # every SWEEP_INTERVAL_SECONDS
