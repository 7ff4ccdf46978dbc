"""Reading, decoding and preprocessing catalog photos for the model, in worker processes.

Decoding and the model's resize and crop hold the GIL for much of their time: threads fought
over it (an image cost 6.2 ms in a pool of threads against 2 ms alone, issue 14), so the
indexing pipeline decodes in a pool of processes (``CLIP_DECODE_POOL=processes``), started
with ``spawn`` (forking a process that holds torch's threads, CUDA or database connections is
unsafe) and kept for the life of the process: a worker's start-up imports torch, seconds,
which a pool per task would pay again for every batch. Workers get file paths (or bytes) and a
picklable transform and return uint8 arrays; they never see the ORM or the database.

Threads remain for ``CLIP_DECODE_POOL=threads``, for one worker or none, for encoders
without a picklable transform and in daemonic processes (prefork Celery children).

This module is imported by the worker processes, which never set Django up: nothing here may
need the app registry (settings load lazily from ``DJANGO_SETTINGS_MODULE`` if read).
"""

from __future__ import annotations

import atexit
import io
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from PIL import Image

from search.embeddings.pixels import decode_process_init
from shop.images import InvalidImage, open_image

log = logging.getLogger(__name__)

POOLS = ("processes", "threads")

# What a decode job returns: the pixels, or None and why the file could not be used.
Decoded = tuple[object | None, str | None]


def decode(source: str | bytes, prepare: Callable) -> Decoded:
    """Read (a path) or take (bytes), decode and ``prepare`` one photo: the unit of work.

    An unreadable or invalid file is reported, not raised, so it never fails its batch.
    """
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                source = f.read()
        return prepare(open_image(source)), None
    except (InvalidImage, OSError) as exc:
        return None, str(exc)


def decode_stored(name: str, prepare: Callable) -> Decoded:
    """``decode`` for a file of the default storage, by name (threads: they can read it)."""
    try:
        with default_storage.open(name, "rb") as f:
            return decode(f.read(), prepare)
    except OSError as exc:
        return None, str(exc)


def decode_all(sources: Sequence[str | bytes], prepare: Callable) -> list[Decoded]:
    """A job of several photos: one round trip to a worker process for all of them."""
    return [decode(source, prepare) for source in sources]


def decode_stored_all(names: Sequence[str], prepare: Callable) -> list[Decoded]:
    return [decode_stored(name, prepare) for name in names]


def _source(name: str) -> str | bytes:
    """What a worker process is given for a stored file: its path when the storage has local
    files (the worker reads it), else its bytes, read here (one at a time: a remote storage
    is better served by the thread pool, which reads in parallel)."""
    try:
        return default_storage.path(name)
    except NotImplementedError:
        with default_storage.open(name, "rb") as f:
            return f.read()


def pool_kind(encoder) -> str:
    """Which pool feeds ``encoder``: ``processes`` where it can, else ``threads``."""
    kind = settings.CLIP_DECODE_POOL
    if kind not in POOLS:
        raise ImproperlyConfigured(f"CLIP_DECODE_POOL must be one of {POOLS}, not {kind!r}")
    if (
        kind == "processes"
        and settings.CLIP_DECODE_WORKERS > 1
        and getattr(encoder, "pixel_transform", None) is not None
        # the workers load the parent's settings module (open_image reads its limits)
        and "DJANGO_SETTINGS_MODULE" in os.environ
        # a daemonic process may not have children: a prefork Celery worker's child (its
        # siblings are the parallelism there; the GPU worker runs --pool solo)
        and not multiprocessing.current_process().daemon
    ):
        return "processes"
    return "threads"


@contextmanager
def decoder(encoder) -> Iterator[Callable[[Sequence[str]], Future]]:
    """``decode(storage names)`` -> a future of their ``(pixels, error)``, for one indexing call.

    Processes: the process-wide pool (started on first use, reused by every call). Threads:
    ``CLIP_DECODE_WORKERS`` threads (at least one) for this call. Jobs still queued when the
    block is left by an error are cancelled.
    """
    pending: set[Future] = set()  # only these: done futures hold pixels the caller may drop
    if pool_kind(encoder) == "processes":
        pool, own, prepare = process_pool(), False, encoder.pixel_transform

        def job(names: Sequence[str]) -> Future:
            sources, unread = [], {}
            for i, name in enumerate(names):
                try:
                    sources.append(_source(name))
                except OSError as exc:  # a remote file that could not be read here
                    unread[i] = (None, str(exc))
            if not unread:
                return pool.submit(decode_all, sources, prepare)
            done: Future = Future()  # rare: decode the rest here rather than complicate
            decoded = iter(decode_all(sources, prepare))
            done.set_result([unread.get(i) or next(decoded) for i in range(len(names))])
            return done
    else:
        pool = ThreadPoolExecutor(max(1, settings.CLIP_DECODE_WORKERS), "decode")
        own, prepare = True, encoder.preprocess_image

        def job(names: Sequence[str]) -> Future:
            return pool.submit(decode_stored_all, names, prepare)

    def submit(names: Sequence[str]) -> Future:
        future = job(names)
        pending.add(future)
        future.add_done_callback(pending.discard)
        return future

    try:
        yield submit
    except BrokenProcessPool:
        # A worker died (killed, out of memory, a crash in a decoder): start afresh next time.
        _discard(pool)
        raise
    finally:
        for future in list(pending):
            future.cancel()
        if own:
            pool.shutdown(wait=True)


def decoded_batches(encoder, batches: Sequence[Sequence[str]]) -> Iterator[list[Decoded]]:
    """Each batch of stored files (names), decoded for ``encoder``, in order.

    A batch is split into two jobs per worker, so even a single batch is spread over all of
    them while each round trip to a process carries several photos; the next batch is
    decoding while the caller works on this one (two batches in flight at most).
    """
    parts = 2 * max(1, settings.CLIP_DECODE_WORKERS)
    with decoder(encoder) as decode:

        def submit(batch: Sequence[str]) -> list[Future]:
            size = max(1, -(-len(batch) // parts))
            return [decode(batch[i : i + size]) for i in range(0, len(batch), size)]

        in_flight = deque(submit(batch) for batch in batches[:2])
        for i in range(len(batches)):
            done = [item for future in in_flight.popleft() for item in future.result()]
            if i + 2 < len(batches):
                in_flight.append(submit(batches[i + 2]))
            yield done


_pool: ProcessPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None
_pool_lock = threading.Lock()


def process_pool() -> ProcessPoolExecutor:
    """The process-wide pool of ``CLIP_DECODE_WORKERS`` decode processes.

    Its workers start as jobs arrive (``decode_pool_warm`` starts them all). A forked child
    gets a pool of its own: the parent's is not usable there.
    """
    global _pool, _pool_key
    key = (os.getpid(), settings.CLIP_DECODE_WORKERS)
    with _pool_lock:
        if _pool is None or _pool_key != key:
            if _pool is not None and _pool_key[0] == os.getpid():
                _pool.shutdown(wait=False, cancel_futures=True)  # the worker count changed
            _pool = ProcessPoolExecutor(
                settings.CLIP_DECODE_WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
            _pool_key = key
        return _pool


def decode_pool_warm(encoder) -> int:
    """Start every decode process now (each imports torch: seconds), not in the first batches.

    Returns how many are running: 0 where ``encoder`` is fed by threads.
    """
    if pool_kind(encoder) != "processes":
        return 0
    pool, workers, pids = process_pool(), settings.CLIP_DECODE_WORKERS, set()
    while len(pids) < workers:  # a worker answers only once started; the job keeps it busy
        jobs = [pool.submit(_warm, encoder.pixel_transform) for _ in range(workers)]
        pids.update(job.result() for job in jobs)
    return len(pids)


def decode_pool_shutdown() -> None:
    """Stop the decode processes (at exit; tests and benchmarks may call it)."""
    with _pool_lock:
        pool = _pool
    if pool is not None:
        _discard(pool)
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(decode_pool_shutdown)


def _discard(pool: Executor) -> None:
    global _pool, _pool_key
    with _pool_lock:
        if _pool is pool:
            _pool = _pool_key = None


def _warm(prepare: Callable) -> int:
    """Decode one photo, so a worker's first real one pays nothing extra (the settings module
    open_image reads, the transform's unpickling); returns the worker's pid."""
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(photo, "PNG")
    _, error = decode(photo.getvalue(), prepare)
    if error is not None:
        raise RuntimeError(f"a decode process cannot decode a blank PNG: {error}")
    time.sleep(0.05)  # held long enough that the other jobs go to the other workers
    return os.getpid()


def _worker_init(parent: int) -> None:
    decode_process_init()
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    """A worker whose parent died (kill -9 of a Celery worker) would wait for jobs forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
