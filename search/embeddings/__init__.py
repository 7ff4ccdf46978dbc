"""The only package that imports open_clip or torch.

The rest of the project sees an ``Encoder`` (``base.py``): texts or PIL images in,
L2-normalised float32 numpy vectors out. ``registry.get_encoder()`` returns the configured one
(the registry is the only module here that reads Django settings); ``clip.py`` is the open_clip
implementation and, like this package's import, needs no Django, so training can use it.
"""

from .base import Encoder
from .clip import ClipEncoder, ModelLoadError, ModelSpec

__all__ = ["ClipEncoder", "Encoder", "ModelLoadError", "ModelSpec"]
