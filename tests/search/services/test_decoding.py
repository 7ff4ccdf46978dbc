"""Decoding in worker processes: same vectors as threads, one pool reused, workers that
use one torch thread, die with their parent and, dead, cost one call only."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from django.core.exceptions import ImproperlyConfigured

from search.embeddings.registry import get_encoder
from search.models import ImageEmbedding
from search.services import decoding, indexing
from tests.workers import ROOT, wait_for

pytestmark = pytest.mark.django_db

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]


@pytest.fixture(scope="module", autouse=True)
def _stop_the_pool():
    yield
    decoding.decode_pool_shutdown()


@pytest.fixture
def processes(settings):
    settings.CLIP_DECODE_POOL = "processes"
    settings.CLIP_DECODE_WORKERS = 2
    settings.CLIP_BATCH_SIZE = 2  # five images: three batches


def _vectors() -> dict[int, np.ndarray]:
    return {e.image_id: np.asarray(e.embedding) for e in ImageEmbedding.objects.all()}


def test_processes_write_the_vectors_threads_write_and_skip_a_bad_file(
    make_product, processes, settings, caplog, monkeypatch
):
    product = make_product(colours=COLOURS)
    images = list(product.images.order_by("id"))
    with open(images[1].image.path, "wb") as f:
        f.write(b"not an image")
    ids = [img.pk for img in images]
    settings.CLIP_DECODE_POOL = "threads"
    assert indexing.images_embed(image_ids=ids) == 4
    by_threads = _vectors()
    ImageEmbedding.objects.all().delete()

    settings.CLIP_DECODE_POOL = "processes"
    assert decoding.pool_kind(get_encoder()) == "processes"
    monkeypatch.setattr(logging.getLogger("search"), "propagate", True)  # to caplog
    with caplog.at_level(logging.ERROR, logger="search"):
        assert indexing.images_embed(image_ids=ids) == 4
    assert f"image {images[1].pk} ({images[1].image.name}) cannot be embedded" in caplog.text
    by_processes = _vectors()
    assert sorted(by_processes) == sorted(by_threads) == sorted(set(ids) - {images[1].pk})
    for image_id, vector in by_threads.items():
        assert np.allclose(by_processes[image_id], vector, atol=1e-6)


def test_a_storage_without_paths_sends_bytes_and_an_unreadable_file_is_skipped(
    make_product, processes, monkeypatch
):
    from django.core.files.storage import default_storage

    images = list(make_product(colours=COLOURS).images.order_by("id"))
    lost = images[2].image.name

    class Remote:  # a bucket: files to open, no local paths
        def path(self, name):
            raise NotImplementedError("remote storage")

        def open(self, name, mode="rb"):
            if name == lost:
                raise ConnectionResetError("the bucket hung up")
            return default_storage.open(name, mode)

    monkeypatch.setattr(decoding, "default_storage", Remote())
    assert indexing.images_embed(image_ids=[img.pk for img in images]) == 4
    assert sorted(_vectors()) == sorted(img.pk for img in images if img.image.name != lost)


def test_one_pool_serves_every_batch_and_every_call(make_product, processes, monkeypatch):
    decoding.decode_pool_shutdown()
    started = []

    class Counted(decoding.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            started.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(decoding, "ProcessPoolExecutor", Counted)
    ids = list(make_product(colours=COLOURS).images.values_list("id", flat=True))
    assert indexing.images_embed(image_ids=ids) == 5  # three batches
    ImageEmbedding.objects.all().delete()
    assert indexing.images_embed(image_ids=ids) == 5
    assert len(started) == 1
    assert decoding.process_pool() is started[0]


def test_workers_use_one_torch_thread(processes):
    assert decoding.decode_pool_warm(get_encoder()) == 2
    pool = decoding.process_pool()
    assert {pool.submit(torch.get_num_threads).result() for _ in range(4)} == {1}


def test_a_dead_worker_fails_one_call_and_the_next_gets_a_fresh_pool(make_product, processes):
    ids = list(make_product(colours=COLOURS).images.values_list("id", flat=True))
    decoding.decode_pool_warm(get_encoder())
    broken = decoding.process_pool()
    os.kill(next(iter(broken._processes)), signal.SIGKILL)  # as the OOM killer would

    def noticed() -> bool:
        try:
            broken.submit(os.getpid)
        except BrokenProcessPool:
            return True
        return False

    wait_for(noticed, timeout=20, message="the pool to notice its dead worker")
    with pytest.raises(BrokenProcessPool):
        indexing.images_embed(image_ids=ids)
    assert indexing.images_embed(image_ids=ids) == 5
    assert decoding.process_pool() is not broken


def test_threads_where_processes_cannot_or_need_not_serve(settings, monkeypatch):
    encoder = get_encoder()
    settings.CLIP_DECODE_POOL, settings.CLIP_DECODE_WORKERS = "processes", 4
    assert decoding.pool_kind(encoder) == "processes"
    assert decoding.pool_kind(SimpleNamespace(pixel_transform=None)) == "threads"
    settings.CLIP_DECODE_WORKERS = 1
    assert decoding.pool_kind(encoder) == "threads"
    settings.CLIP_DECODE_WORKERS = 4
    daemonic = SimpleNamespace(daemon=True)  # a prefork Celery child may not have children
    monkeypatch.setattr(decoding.multiprocessing, "current_process", lambda: daemonic)
    assert decoding.pool_kind(encoder) == "threads"
    settings.CLIP_DECODE_POOL = "fork"
    with pytest.raises(ImproperlyConfigured, match="CLIP_DECODE_POOL"):
        decoding.pool_kind(encoder)


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """kill -9 of a Celery worker must not leave its decode processes behind."""
    script = textwrap.dedent(
        """
        import sys, time
        from search.services import decoding
        pool = decoding.process_pool()
        jobs = [pool.submit(decoding._warm, str) for _ in range(8)]  # starts both
        [job.result() for job in jobs]
        print(*sorted(pool._processes), flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "CLIP_DECODE_WORKERS": "2"}
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()

        def gone() -> bool:
            return not any(os.path.exists(f"/proc/{pid}") for pid in workers)

        started = time.monotonic()
        wait_for(gone, timeout=20, message="the orphaned decode processes to exit")
        assert time.monotonic() - started < 20
    finally:
        parent.kill()
