"""skseg: offline handwritten signature verification for scikit-learn.

- :class:`SignaturePreprocessor` turns scans (paths, PIL images, arrays) into
  clean uint8 canvases, one image or one pair at a time.
- :class:`SiameseVerifier` learns from labelled pairs whether the second
  signature is a genuine signature of the first one's writer.
"""

__version__ = "0.1.0"

from ._pairs import PairedCanvases  # noqa: E402
from .preprocessing import SignaturePreprocessor  # noqa: E402
from .verifier import SiameseVerifier  # noqa: E402
from .io import load, save  # noqa: E402

__all__ = [
    "PairedCanvases",
    "SiameseVerifier",
    "SignaturePreprocessor",
    "__version__",
    "load",
    "save",
]
