"""``train_clip`` and ``evaluate_search`` run as commands, at tiny sizes: their output and
their effect (weights the app loads through its real loading path; the evaluation table and
its JSON, with the trained demo model far above an untrained one on known answers)."""

import io
import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from safetensors.numpy import load_file

from search.embeddings.registry import get_encoder

pytestmark = pytest.mark.django_db


def test_train_clip_saves_weights_that_clip_check_and_search_load(settings, tmp_path):
    out_dir = tmp_path / "tiny-trained"
    out = io.StringIO()
    call_command(
        "train_clip",
        *("--source", "fashion-mnist", "--model", "shop-clip-tiny", "--epochs", "2"),
        *("--train-count", "120", "--val-count", "40", "--batch-size", "40"),
        *("--seed", "3", "--out", str(out_dir), "--no-progress", "--device", "cpu"),
        stdout=out,
    )
    text = out.getvalue()
    trained = re.search(r"Trained in \d+s: train loss ([\d.]+) -> ([\d.]+), val loss", text)
    assert trained, text
    assert f"Saved to {out_dir}" in text
    printed = dict(re.findall(r"^  (CLIP_\w+)=(.*)$", text, flags=re.M))
    assert printed == {
        "CLIP_MODEL": "tiny-trained",
        "CLIP_PRETRAINED": f"local-dir:{out_dir.resolve()}",
    }
    # The printed settings, as a user would set them: clip_check loads the folder.
    settings.CLIP_MODEL, settings.CLIP_PRETRAINED = (
        printed["CLIP_MODEL"],
        printed["CLIP_PRETRAINED"],
    )
    check = io.StringIO()
    call_command("clip_check", stdout=check)
    assert f"weights 'local-dir:{out_dir.resolve()}': 64 dims on cpu" in check.getvalue()
    # What the app loaded is the saved training, not a random initialisation (open_clip only
    # warns when a local folder has no weights): every tensor equals the file's.
    encoder = get_encoder()
    saved = load_file(out_dir / "open_clip_model.safetensors")
    loaded = {k: v.detach().float().numpy() for k, v in encoder.model.state_dict().items()}
    assert saved.keys() <= loaded.keys() and len(saved) > 10
    for name, value in saved.items():
        assert (loaded[name] == value.astype("float32")).all(), name
    assert json.loads((out_dir / "TRAINING.json").read_text())["options"]["epochs"] == 2


def test_evaluate_search_prints_the_quality_table_and_writes_its_json(tmp_path):
    report_path = tmp_path / "report.json"
    # As a user runs it: manage.py, which re-runs itself on throwaway services of its own.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    cmd = [sys.executable, "manage.py", "evaluate_search", "--per-pair", "1", "--k", "5"]
    cmd += ["--photo-queries", "5", "--no-baseline", "--json", str(report_path)]
    cmd += ["--suites", "intent", "--suite-parts", "tuning"]  # one suite, one part: quick
    proc = subprocess.run(
        cmd, cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Catalog: 110 held-out products (Fashion-MNIST t10k)" in out  # 11 colours x 10
    assert f"wrote {report_path}" in out
    report = json.loads(report_path.read_text())
    metrics = report["models"]["trained"]
    assert metrics["model"] == "shop-clip-demo" and report["k"] == 5
    rows = dict(re.findall(r"^\| (.+?) +\| +([\d.]+) \|$", out, flags=re.M))
    names = [n for n in metrics if n not in ("model", "weights", "seconds")]
    assert sorted(rows) == sorted(names), out
    for name in names:  # the printed table is the JSON's numbers
        assert rows[name] == f"{metrics[name]:.3f}", name
    # Known answers: the demo model was trained on exactly these colours and categories
    # (an untrained one scores 0.04 and 0.0 here).
    assert metrics["text P@5 (colour+category)"] >= 0.9
    assert metrics["describe: category top-1"] >= 0.9
    assert {n for n in names if " tuning " in n or " heldout " in n} == {
        "intent tuning P@5",
        "intent tuning P@5 vector only",
        "no-match tuning in-domain flagged",
    }, names
