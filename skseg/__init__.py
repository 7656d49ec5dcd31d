"""skseg: offline handwritten signature verification for scikit-learn.

- :class:`SignaturePreprocessor` turns scans (paths, PIL images, arrays) into
  clean uint8 canvases, one image or one pair at a time.
- :class:`SiameseVerifier` learns from labelled pairs whether the second
  signature is a genuine signature of the first one's writer.
- :func:`save` and :func:`load` store fitted models in a format that runs no
  code when loaded.
"""

import importlib

__version__ = "0.1.0"

from ._pairs import PairedCanvases  # noqa: E402
from .preprocessing import SignaturePreprocessor  # noqa: E402

# The torch side is imported on first use: preprocessing worker processes
# (joblib) import skseg.preprocessing and should not pay for torch.
_LAZY = {"SiameseVerifier": "verifier", "load": "io", "save": "io"}

__all__ = [
    "PairedCanvases",
    "SiameseVerifier",
    "SignaturePreprocessor",
    "__version__",
    "load",
    "save",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skseg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
