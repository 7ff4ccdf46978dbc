"""Training is its own package: every clip_train module imports without Django.

Checked in a fresh interpreter (the test process has Django loaded already): it may use the
encoder runtime ``search.embeddings`` and nothing else of the web app.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import clip_train

ROOT = Path(__file__).resolve().parents[2]
WEB_APP = ("django", "shop", "celery", "rest_framework", "config")

IMPORT_ALL = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_no_clip_train_module_imports_django():
    modules = sorted(f"clip_train.{m.name}" for m in pkgutil.iter_modules(clip_train.__path__))
    assert {"clip_train.main", "clip_train.data", "clip_train.trainer"} <= set(modules)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(modules) <= set(loaded)
    web_app = [
        name
        for name in loaded
        if name.split(".")[0] in WEB_APP
        or (name.startswith("search.") and name.split(".")[1] != "embeddings")
        or name == "search.embeddings.registry"  # the one encoder module that reads settings
    ]
    assert not web_app, f"clip_train pulls in the web app: {web_app}"
