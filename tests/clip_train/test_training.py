"""CLIP training: a tiny run learns, and what it saves loads through the app's normal path.

No database: the Fashion-MNIST source renders products on the fly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from clip_train.data import FashionPairs, ImageTextPairs
from clip_train.fashion import (
    BACKGROUND,
    HELD_OUT_WORDS,
    PALETTE,
    colourise,
    load_split,
    sample_items,
)
from clip_train.losses import compose_loss, same_label_loss
from clip_train.main import train
from clip_train.model import load_model
from clip_train.options import TrainingError, TrainOptions
from clip_train.trainer import Augment, autocast_dtype, lr_at
from search.embeddings.clip import ClipEncoder, ModelSpec, import_torch

# The tiny run's data, model and seed (its untrained twin differs only in epochs and lr).
TINY = dict(
    source="fashion-mnist",
    model="shop-clip-tiny",
    train_count=240,
    val_count=60,
    batch_size=60,
    seed=7,
    progress=False,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "tiny"
    opts = TrainOptions(
        **TINY, epochs=5, lr=2e-3, warmup=2, out=str(out), command="pytest tiny run"
    )
    return train(opts)


def test_tiny_training_lowers_the_loss(tiny_run, tmp_path):
    history = tiny_run.history
    assert len(history) == 5
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.1
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    # Retrieval among the distinct validation captions beats the same model untrained (the
    # same seed and data, learning rate 0: about chance, 1 / captions).
    untrained = train(
        TrainOptions(**TINY, epochs=1, lr=0.0, out=str(tmp_path / "untrained"))
    ).metrics
    assert untrained["val_i2t_acc"] < 2 / untrained["val_captions"]
    assert tiny_run.metrics["val_i2t_acc"] > untrained["val_i2t_acc"]
    assert tiny_run.metrics["val_t2i_acc"] > untrained["val_t2i_acc"]


def test_saved_folder_describes_the_run(tiny_run):
    out = tiny_run.out
    assert {p.name for p in out.iterdir()} >= {
        "open_clip_config.json",
        "open_clip_model.safetensors",
        "TRAINING.json",
    }
    config = json.loads((out / "open_clip_config.json").read_text())
    assert config["model_cfg"]["vision_cfg"]["image_size"] == 32
    assert config["preprocess_cfg"]["size"] in (32, [32, 32])
    record = json.loads((out / "TRAINING.json").read_text())
    assert record["command"] == "pytest tiny run"
    assert record["seed"] == 7
    assert record["epochs"] == 5
    assert record["model_cfg"] == config["model_cfg"]
    assert record["final"]["train_loss"] == pytest.approx(tiny_run.metrics["train_loss"])
    assert "val_loss" in record["final"] and record["duration_s"] > 0
    # What the run measured, not what it was given: one row per epoch, the parameters counted
    # in the saved file (fp16 by default), the versions it ran with.
    assert [row["epoch"] for row in record["history"]] == [1, 2, 3, 4, 5]
    from safetensors import safe_open

    with safe_open(out / "open_clip_model.safetensors", framework="pt") as f:
        tensors = [f.get_tensor(k) for k in f.keys()]
    assert sum(t.numel() for t in tensors) >= record["parameters"]
    assert {str(t.dtype) for t in tensors if t.is_floating_point()} == {"torch.float16"}
    assert record["versions"]["torch"] and record["versions"]["open_clip"]
    assert tiny_run.env["CLIP_PRETRAINED"] == f"local-dir:{out.resolve()}"


def test_checkpoint_loads_through_the_app_path_with_equal_embeddings(tiny_run):
    torch, _ = import_torch()
    encoder = ClipEncoder(ModelSpec("trained", f"local-dir:{tiny_run.out}"), device="cpu")
    gray, labels = load_split("t10k")
    images = [colourise(gray[it.index], it.colour) for it in sample_items(labels, 12, seed=3)]
    texts = ["a red dress", "blue sneakers", "a photo of a green bag", "something black"]

    model = tiny_run.model.eval()
    with torch.inference_mode():
        pixels = encoder.preprocess_images(images)
        expected_img = model.encode_image(pixels, normalize=True).numpy()
        expected_txt = model.encode_text(tiny_run.tokenizer(texts), normalize=True).numpy()
    got_img, got_txt = encoder.embed_images(images), encoder.embed_texts(texts)

    # Weights are saved in fp16: equal up to half-precision rounding.
    np.testing.assert_allclose(got_img, expected_img, atol=1e-2)
    np.testing.assert_allclose(got_txt, expected_txt, atol=1e-2)
    assert np.all(np.sum(got_img * expected_img, axis=1) > 0.999)
    assert np.all(np.sum(got_txt * expected_txt, axis=1) > 0.999)


def test_training_is_seeded(tiny_run, tmp_path):
    opts = TrainOptions(
        model="shop-clip-tiny",
        train_count=120,
        val_count=20,
        epochs=1,
        batch_size=60,
        seed=11,
        progress=False,
    )
    a = train(TrainOptions(**{**opts.__dict__, "out": str(tmp_path / "a")}))
    b = train(TrainOptions(**{**opts.__dict__, "out": str(tmp_path / "b")}))
    assert a.history[0]["train_loss"] == pytest.approx(b.history[0]["train_loss"], rel=1e-5)


def test_bf16_precision_computes_in_bf16(tmp_path):
    torch, _ = import_torch()
    assert autocast_dtype("cpu", "auto") is None  # CPU trains in fp32 unless asked
    assert autocast_dtype("cpu", "bf16") == torch.bfloat16
    assert autocast_dtype("cuda", "fp16") == torch.float16

    def linear_dtypes(precision: str) -> set:
        seen = set()

        def hook(module, args, output):
            if isinstance(module, torch.nn.Linear) and torch.is_tensor(output):
                seen.add(output.dtype)

        handle = torch.nn.modules.module.register_module_forward_hook(hook)
        try:
            result = train(
                TrainOptions(
                    model="shop-clip-tiny",
                    train_count=60,
                    val_count=20,
                    epochs=1,
                    batch_size=30,
                    precision=precision,
                    save_dtype="fp32",
                    out=str(tmp_path / precision),
                    progress=False,
                )
            )
        finally:
            handle.remove()
        assert np.isfinite(result.metrics["train_loss"])
        return seen

    assert torch.bfloat16 in linear_dtypes("bf16")
    assert linear_dtypes("fp32") == {torch.float32}


def test_extra_losses_each_add_to_the_training_loss(tmp_path):
    """The extra losses ('this, but in red', category prompts, same-category images, photo
    to catalog shot) each take part: switching one on raises the first step's loss above the
    same seeded run without it, and training still lowers the total."""
    common = dict(
        model="shop-clip-tiny",
        train_count=80,
        val_count=20,
        epochs=1,
        batch_size=40,
        lr=0.0,  # the same weights throughout: losses differ only by the terms added
        seed=3,
        progress=False,
    )

    def first_loss(**weights) -> float:
        name = "-".join(weights) or "plain"
        result = train(TrainOptions(**common, **weights, out=str(tmp_path / name)))
        return result.history[0]["train_loss"]

    plain = first_loss()
    for weights in (
        {"compose_weight": 1.0},
        {"label_weight": 1.0},
        {"image_label_weight": 1.0},
        {"view_weight": 1.0},
    ):
        assert first_loss(**weights) > plain + 0.1, weights
    result = train(
        TrainOptions(
            **{**common, "lr": 2e-3, "epochs": 2, "seed": 0},
            compose_weight=1.0,
            label_weight=1.0,
            image_label_weight=1.0,
            view_weight=1.0,
            photo_share=0.3,
            out=str(tmp_path / "all"),
        )
    )
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    record = json.loads((result.out / "TRAINING.json").read_text())
    assert record["options"]["view_weight"] == 1.0 and record["options"]["photo_share"] == 0.3


def test_same_label_loss_prefers_label_clusters():
    torch, _ = import_torch()
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99]])
    mixed = clustered[torch.tensor([0, 2, 1, 3])]
    scale = torch.tensor(20.0)
    assert float(same_label_loss(clustered, labels, scale)) < 0.01
    assert float(same_label_loss(mixed, labels, scale)) > 1.0
    assert float(same_label_loss(clustered, torch.tensor([0, 1, 2, 3]), scale)) == 0.0


def test_compose_loss_targets_the_same_item_in_the_other_colour():
    torch, _ = import_torch()
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    partner = torch.tensor([3, 4, 5, 0, 1, 2])
    # Colour texts chosen so that 0.7 * image + 0.3 * text points exactly at the partner.
    word = (img[partner] - 0.7 * img) / 0.3
    good = compose_loss(img, word, torch.tensor(100.0))
    wrong = compose_loss(img, word[torch.tensor([1, 2, 0, 4, 5, 3])], torch.tensor(100.0))
    assert float(good) < 0.01 < float(wrong)
    only_partner = torch.zeros(6, 6, dtype=torch.bool)
    only_partner[torch.arange(6), partner] = True
    assert float(compose_loss(img, word, torch.tensor(100.0), positives=only_partner)) == (
        pytest.approx(float(good), abs=1e-6)
    )


def test_fast_render_matches_colourise_then_preprocess():
    """Training pixels are what the search sees: colourise at 128 px, then the model's resize."""
    torch, _ = import_torch()
    loaded = load_model(TrainOptions(model="shop-clip-tiny"), "cpu")
    gray, labels = load_split("t10k")
    items = sample_items(labels, 30, seed=5)
    pairs = FashionPairs(gray, items, 32)
    ids = [pairs.colours.index(it.colour) for it in items]
    fast = pairs.render(np.arange(len(items)), ids)
    reference = torch.stack([loaded.geometry(colourise(gray[it.index], it.colour)) for it in items])
    assert fast.shape == reference.shape == (30, 3, 32, 32)
    assert float((fast - reference).abs().max()) <= 3 / 255


def test_training_captions_vary_and_name_the_drawn_colour():
    gray, labels = load_split("t10k")
    pairs = FashionPairs(gray, sample_items(labels, 20, seed=1), 32)
    rng = np.random.default_rng(0)
    captions = set()
    for _ in range(10):
        _, caps = pairs.batch(np.arange(20), rng, train=True)
        captions.update(caps)
    assert len(captions) > 40
    _, val = pairs.batch(np.arange(20), rng, train=False)
    assert val == pairs.batch(np.arange(20), rng, train=False)[1]  # validation is fixed
    assert all(c.startswith("a ") for c in val)


def test_training_captions_use_shoppers_words_but_never_the_held_out_ones():
    gray, labels = load_split("t10k")
    pairs = FashionPairs(gray, sample_items(labels, 40, seed=2), 32)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(60):
        seen.update(pairs.batch(np.arange(40), rng, train=True)[1])
        seen.update(pairs.variant_batch(np.arange(20), rng)[1])
    words = {w.strip("?,.") for c in seen for w in c.lower().split()}
    assert not words & HELD_OUT_WORDS
    # Garment synonyms, shade names and conversational sentences are all taught.
    assert {"trainers", "jeans", "handbag", "navy", "crimson", "charcoal"} <= words
    assert any(c.startswith("do you have") for c in seen)
    tokens = max(len(c.split()) for c in seen)
    assert tokens > 12  # longer than the old 20-token context held with CLIP's tokens


def test_shoppers_photos_keep_the_item_colour_and_change_the_rest():
    """A shopper's photo of an item: reframed, on another background, relit, but the garment
    keeps its colour name (brightness never below 0.6, 0.85 for white, grey and black)."""
    gray, labels = load_split("t10k")
    items = sample_items(labels, 40, seed=4)
    pairs = FashionPairs(gray, items, 32)
    rng = np.random.default_rng(0)
    photos, shots = pairs.views(np.arange(40), rng)
    assert photos.shape == shots.shape == (40, 3, 32, 32)
    corner = lambda x: x[:, :, :3, :3].mean(dim=(2, 3))  # noqa: E731
    studio = np.array(BACKGROUND) / 255
    assert np.allclose(corner(shots).numpy(), studio, atol=0.02)
    moved = np.abs(corner(photos).numpy() - studio).max(axis=1) > 0.05
    assert moved.mean() > 0.5  # most photos are not on the studio background
    # Lighting scales a pixel, never turns it: coloured garments keep pixels that point their
    # palette colour's way in RGB (small, blurred ones blend into their background).
    best = []
    for i, it in enumerate(items):
        if it.colour in ("white", "grey", "black"):
            continue
        rgb = photos[i].reshape(3, -1).numpy().T
        target = np.array(PALETTE[it.colour], dtype=np.float64)
        cos = rgb @ target / (np.linalg.norm(rgb, axis=1) * np.linalg.norm(target) + 1e-9)
        best.append(cos.max())
    assert np.median(best) > 0.95


def test_augment_never_changes_colour():
    torch, _ = import_torch()
    flat = torch.tensor([0.8, 0.1, 0.3]).view(1, 3, 1, 1).expand(6, 3, 16, 16).contiguous()
    out = Augment()(flat, torch.Generator().manual_seed(0))
    assert torch.allclose(out, flat, atol=1e-6)
    # A shape on a background only moves: the set of colours stays the same.
    img = torch.ones(4, 3, 16, 16)
    img[:, :, 4:12, 6:10] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    out = Augment(zoom=(1.0, 1.0), shift=0.0, flip=1.0)(img, torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.flip(img, dims=[3]), atol=1e-5)


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1e-3, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4)
    assert max(lrs) == pytest.approx(1e-3)
    assert lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] < 1e-5


def test_image_text_pairs_from_pil_images():
    torch, _ = import_torch()
    loaded = load_model(TrainOptions(model="shop-clip-tiny"), "cpu")
    images = [Image.new("RGB", (50, 40), (200, 10, 10)), Image.new("RGBA", (20, 20))]
    pairs = ImageTextPairs.from_images(
        images, [["a red thing", "red"], ["a blank"]], loaded.geometry
    )
    pixels, caps = pairs.batch(np.array([0, 1]), np.random.default_rng(0), train=True)
    assert pixels.shape == (2, 3, 32, 32) and pixels.dtype == torch.float32
    assert caps[0] in ("a red thing", "red") and caps[1] == "a blank"
    assert float(pixels[1].min()) == 1.0  # transparent -> white, as the search does


def test_bad_options_are_explained():
    with pytest.raises(TrainingError, match="source"):
        train(TrainOptions(source="nope"))
    with pytest.raises(TrainingError, match="No model config"):
        load_model(TrainOptions(model="no-such-model"), "cpu")


def test_fine_tuning_starts_from_the_given_weights(tiny_run, tmp_path):
    """--pretrained local-dir:DIR continues from those weights, not from a fresh init."""
    common = dict(
        model="shop-clip-tiny",
        train_count=60,
        val_count=20,
        epochs=1,
        batch_size=30,
        lr=0.0,  # no update: the saved model must be the one it started from
        seed=5,
        progress=False,
    )
    tuned = train(
        TrainOptions(**common, pretrained=f"local-dir:{tiny_run.out}", out=str(tmp_path / "ft"))
    )
    scratch = train(TrainOptions(**common, out=str(tmp_path / "scratch")))
    texts = ["a red dress", "blue sneakers", "a photo of a green bag", "something black"]

    def embed(run):
        return ClipEncoder(
            ModelSpec(run.out.name, f"local-dir:{run.out}"), device="cpu"
        ).embed_texts(texts)

    source = embed(tiny_run)
    assert np.all(np.sum(embed(tuned) * source, axis=1) > 0.999)
    assert np.mean(np.sum(embed(scratch) * source, axis=1)) < 0.9
    record = json.loads((tuned.out / "TRAINING.json").read_text())
    assert record["options"]["pretrained"] == f"local-dir:{tiny_run.out}"


def test_growing_the_text_context_keeps_short_texts_and_reads_long_ones(tiny_run):
    """--context-length 48 on a 32-token model: a short text embeds exactly as before, and
    a sentence naming its item after the 32nd token is read (it was cut off)."""
    torch, _ = import_torch()
    source = f"local-dir:{tiny_run.out}"
    short = load_model(TrainOptions(model="shop-clip-tiny", pretrained=source), "cpu")
    grown = load_model(
        TrainOptions(model="shop-clip-tiny", pretrained=source, context_length=48), "cpu"
    )
    assert grown.model_cfg["text_cfg"]["context_length"] == 48
    texts = ["a red dress"] + ["hello " * 35 + item for item in ("a red dress", "a blue bag")]
    with torch.inference_mode():
        a = short.model.eval().encode_text(short.tokenizer(texts), normalize=True)
        b = grown.model.eval().encode_text(grown.tokenizer(texts), normalize=True)
    assert grown.tokenizer(texts).shape == (3, 48)
    assert float(a[0] @ b[0]) > 0.9999
    # Cut at 32 tokens the two sentences are the same text; with 48 they differ.
    assert float(a[1] @ a[2]) > 0.9999
    assert float(b[1] @ b[2]) < 0.9999
    with pytest.raises(TrainingError, match="only grow"):
        load_model(TrainOptions(model="shop-clip-tiny", pretrained=source, context_length=8), "cpu")
