"""The only package that imports open_clip or torch.

The rest of the project sees: ``get_encoder()`` -> an object that turns PIL images or
strings into L2-normalised float32 numpy vectors.
"""

from .clip import ClipEncoder, ModelLoadError, ModelSpec, get_encoder

__all__ = ["ClipEncoder", "ModelLoadError", "ModelSpec", "get_encoder"]
