"""The shop-the-look measurement runs end to end on a small held-out catalog."""

import numpy as np
import pytest

from search.benchmarks import look, scenes

pytestmark = pytest.mark.django_db


def test_look_evaluate_reports_before_and_after_for_every_photo_kind(small_demo_catalog):
    report = look.look_evaluate(seed=look.TUNING_SEED, queries=4, collages=2)
    assert "rotated 15°" in scenes.DEGRADATIONS  # one of the issue's shoppers' photos
    for kind in scenes.DEGRADATIONS:
        for row in (f"{kind}: whole photo", f"{kind}: auto-crop (foreground)"):
            assert 0 <= report[row] <= 1
            assert 0 <= report[f"{row}, same colour"] <= 1  # single photos: colour too
    colour = {row: v for row, v in report.items() if row.endswith(", same colour")}
    assert any(v != report[row.removesuffix(", same colour")] for row, v in colour.items())
    assert "collage: whole photo, same colour" not in report  # collages: category only
    # Collages keep their items apart: the weightless detector must find most of them.
    assert report["collage: recall @ IoU 0.5 (foreground)"] >= 0.5
    table = look.look_table({"tuning": report})
    assert "collage: per detected item" in table
    assert "| original: whole photo, same colour " in table


def test_the_rotated_photo_holds_the_whole_item_and_leaves_the_seeds_alone():
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    photo = scenes.degraded("t10k-9011-red", "rotated 15°", rng)
    assert rng.bit_generator.state == before  # the other kinds' photos are unchanged
    upright = scenes.cutout("t10k-9011-red")
    ink = np.asarray(upright.getchannel("A")) > 128
    red = np.asarray(photo, np.float32)
    inked = (red[..., 0] - red[..., 1] > 80).sum()
    assert photo.width == photo.height > upright.width  # grown to fit the turned item
    assert abs(inked - ink.sum()) < 0.1 * ink.sum()  # all of the item, none cut off
