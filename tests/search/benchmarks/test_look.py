"""The shop-the-look measurement runs end to end on a small held-out catalog."""

import pytest

from search.benchmarks import look, scenes

pytestmark = pytest.mark.django_db


def test_look_evaluate_reports_before_and_after_for_every_photo_kind(small_demo_catalog):
    report = look.look_evaluate(seed=look.TUNING_SEED, queries=4, collages=2)
    for kind in scenes.DEGRADATIONS:
        assert 0 <= report[f"{kind}: whole photo"] <= 1
        assert 0 <= report[f"{kind}: auto-crop (foreground)"] <= 1
    # Collages keep their items apart: the weightless detector must find most of them.
    assert report["collage: recall @ IoU 0.5 (foreground)"] >= 0.5
    assert "collage: per detected item" in look.look_table({"tuning": report})
