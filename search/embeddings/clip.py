from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
LOCAL_DIR_PREFIX = "local-dir:"


class ModelLoadError(RuntimeError):
    """The configured CLIP model could not be loaded; the message says what to do."""


def import_torch():
    """Import torch + open_clip, making torchvision importable on CPU-only torch builds.

    The only torchvision wheel on some registries is a CUDA build whose C extension does not
    load against a CPU torch; open_clip needs torchvision only for its transforms, so declaring
    the two op schemas torchvision's Python code registers fakes for is enough.
    """
    if _loaded:
        return _loaded[0]
    import torch

    if torch.version.cuda is None and not _has_op("torchvision::nms"):
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_torch.keepalive = lib  # the definitions live as long as the Library object
    import open_clip

    # Once per process: add_model_config appends the folder to a list and re-reads every
    # config file of every listed folder, so calling it per batch cost 12 ms and grew
    # with each call (the list never shrinks).
    open_clip.add_model_config(MODEL_CONFIG_DIR)
    _loaded.append((torch, open_clip))
    return torch, open_clip


_loaded: list[tuple] = []


def _has_op(qualname: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(qualname, "")
        return True
    except RuntimeError:
        return False


@dataclass(frozen=True)
class ModelSpec:
    """Which CLIP model: an open_clip name plus a pretrained tag, checkpoint file or local dir."""

    name: str
    pretrained: str = ""

    @property
    def key(self) -> str:
        """Identity stored with every vector: two specs with equal keys give equal vectors.

        Local files are fingerprinted by content, so retraining into the same path is a new
        model and its vectors are never mixed with the old ones.
        """
        path = self._local_weights()
        if path is None:
            return f"{self.name}/{self.pretrained or 'random'}"
        return f"{self.name}/{path.name}@{_file_digest(path)}"

    def _local_weights(self) -> Path | None:
        for candidate in (self.pretrained, self.name):
            if candidate.startswith(LOCAL_DIR_PREFIX):
                folder = Path(candidate[len(LOCAL_DIR_PREFIX) :])
                for fname in (
                    "open_clip_model.safetensors",
                    "open_clip_pytorch_model.bin",
                ):
                    if (folder / fname).is_file():
                        return folder / fname
                return folder / "open_clip_config.json"
        if self.pretrained and os.path.isfile(self.pretrained):
            return Path(self.pretrained)
        return None


_digests: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """Content hash of a weights file, remembered per (path, size, mtime).

    ``key`` is read on every ``get_encoder`` call (each task, each photo query); hashing a
    600 MB checkpoint each time costs 0.3-1 s. A file rewritten in place (retraining) changes
    size or mtime, so it is hashed again and still gets a new identity.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _digests.get(memo)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = _digests[memo] = h.hexdigest()[:12]
    return digest


def pick_device(requested: str = "auto") -> str:
    torch, _ = import_torch()
    if requested and requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class ClipEncoder:
    """A loaded open_clip model. Thread-safe for inference; load once per process."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "auto",
        batch_size: int = 32,
        cache_dir: str | None = None,
    ) -> None:
        from search.embeddings.pixels import HostStaging, PixelTransform  # they import this

        torch, open_clip = import_torch()
        self.spec = spec
        self.device = pick_device(device)
        self.batch_size = batch_size
        # Half precision halves memory traffic on GPUs; CPUs have no fast fp16 matmul.
        self.precision = "fp16" if self.device == "cuda" else "fp32"
        model_name, pretrained = spec.name, spec.pretrained or None
        if spec.pretrained.startswith(LOCAL_DIR_PREFIX):
            model_name, pretrained = spec.pretrained, None
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=pretrained,
                precision=self.precision,
                device=self.device,
                cache_dir=cache_dir,
            )
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:  # open_clip raises bare RuntimeError/ValueError/OSError
            raise ModelLoadError(
                f"Could not load CLIP model {spec.name!r} with weights {spec.pretrained!r}: {exc}. "
                "If this machine is offline, download the weights elsewhere and point "
                "CLIP_PRETRAINED at the checkpoint file, or at 'local-dir:/path' holding "
                "open_clip_config.json and open_clip_model.safetensors; or use the bundled demo "
                "model (see README, 'Models')."
            ) from exc
        model.eval()
        self.model = model
        self.preprocess = preprocess
        geometry, normalize = _split_preprocess(preprocess)
        # The resize and crop alone, picklable: decode worker processes run it (None: a
        # preprocess this code does not know how to split, run whole in this process).
        self.pixel_transform = None if geometry is None else PixelTransform(geometry)
        self._staging = HostStaging(pin=self.device == "cuda")
        if normalize is not None:
            shape = (1, 3, 1, 1)
            self._mean = torch.tensor(normalize.mean, device=self.device).view(shape)
            self._std = torch.tensor(normalize.std, device=self.device).view(shape)
        self._lock = threading.Lock()

    @cached_property
    def dim(self) -> int:
        return int(self.embed_texts(["dimension probe"]).shape[1])

    @cached_property
    def key(self) -> str:
        return self.spec.key

    @cached_property
    def logit_scale(self) -> float:
        """The model's learned temperature: softmax(scale * cosine) gives zero-shot odds."""
        scale = getattr(self.model, "logit_scale", None)
        return float(scale.exp().item()) if scale is not None else 100.0

    @property
    def context_length(self) -> int:
        return int(getattr(self.tokenizer, "context_length", 77))

    def preprocess_images(self, images: Iterable[Image.Image]):
        """PIL images -> a CPU tensor batch (safe to run in worker threads)."""
        torch, _ = import_torch()
        return torch.stack([self.preprocess(to_rgb(im)) for im in images])

    def preprocess_image(self, image: Image.Image):
        """One PIL image -> the model's input pixels (thread-safe); ``embed_pixels`` takes a
        list of them.

        The model's own resize and crop, kept as uint8 (H, W, 3): the float conversion and
        normalisation happen on the device in ``embed_pixels``, so a batch moves and stacks a
        quarter of the bytes of float32 tensors. Vectors equal those of the reference
        preprocessing (``preprocess_images``; a test compares them).
        """
        if self.pixel_transform is None:
            return self.preprocess(to_rgb(image))
        return self.pixel_transform(image)

    def embed_pixels(self, pixels) -> np.ndarray:
        """A batch: a list of ``preprocess_image`` results, or a float tensor from
        ``preprocess_images`` (the reference path) -> unit vectors."""
        torch, _ = import_torch()
        if isinstance(pixels, list | tuple) and isinstance(pixels[0], np.ndarray):
            pixels = self.device_batch(pixels)
        else:
            if isinstance(pixels, list | tuple):
                pixels = torch.stack(pixels)
            if self.device == "cuda":
                pixels = pixels.pin_memory().to(self.device, non_blocking=True).half()
            else:
                pixels = pixels.to(self.device)
        with self._lock, torch.inference_mode():
            features = self.model.encode_image(pixels)
        return _normalise(features)

    def device_batch(self, images: Sequence[np.ndarray]):
        """uint8 (H, W, 3) images on the host -> a normalised (N, 3, H, W) batch on the
        device, in the model's precision; the division and normalisation run on the device.

        Stacked into a reused host buffer (pinned on CUDA, so the copy is asynchronous).
        """
        torch, _ = import_torch()
        pinned = self._staging.pin
        with self._staging.stacked(images) as host, torch.inference_mode():
            # On a CPU ``to`` returns the buffer itself; ``float()`` below copies it, so
            # nothing returned aliases a buffer that the next batch overwrites.
            pixels = host.to(self.device, non_blocking=pinned)
            pixels = pixels.permute(0, 3, 1, 2).float().div_(255.0)
            pixels = pixels.sub_(self._mean).div_(self._std)
            return pixels.half() if self.precision == "fp16" else pixels

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = [
            self.embed_pixels(self.preprocess_images(images[i : i + self.batch_size]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> unit vectors. Text longer than the context is truncated by the tokenizer."""
        torch, _ = import_torch()
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[i : i + self.batch_size])).to(self.device)
            with self._lock, torch.inference_mode():
                out.append(_normalise(self.model.encode_text(tokens)))
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _split_preprocess(preprocess) -> tuple[object | None, object | None]:
    """open_clip's eval transform as (geometry: PIL -> PIL, Normalize), or (None, None) when it
    is not the usual ``[..., ToTensor, Normalize]``."""
    from torchvision.transforms import Compose, Normalize  # torch is loaded by now

    steps = list(getattr(preprocess, "transforms", []))
    names = [type(step).__name__ for step in steps]
    tensor_at = next((i for i, n in enumerate(names) if n.endswith("ToTensor")), None)
    if tensor_at is None or steps[tensor_at + 1 :] == [] or not isinstance(steps[-1], Normalize):
        return None, None
    if tensor_at != len(steps) - 2:
        return None, None
    return Compose(steps[:tensor_at]), steps[-1]


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        # Transparent areas become white, as product photos are shot on white.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _normalise(features) -> np.ndarray:
    vectors = features.float().cpu().numpy()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def gpu_utilisation() -> float | None:
    """The first GPU's utilisation now, in percent: NVML through torch, else ``nvidia-smi``;
    None where neither answers (no CUDA here). For benchmarks: whether the model is fed."""
    try:
        import torch

        if torch.cuda.is_available():
            return float(torch.cuda.utilization())
    except Exception:  # torch without NVML bindings: ask the driver's tool instead
        pass
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "-i",
                "0",
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=2,
        )
        return float(out.stdout.split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None
