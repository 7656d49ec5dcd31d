"""Signature data sets: folder loaders, pair making and synthetic signatures.

- :func:`load_signatures` finds the images of a data set on disk (CEDAR,
  Kaggle/SigComp, BHSig260 or a generic ``<writer>/genuine|forged/`` layout).
- :func:`make_pairs` turns single images into labelled (reference, questioned)
  pairs, grouped by writer for writer-independent cross-validation.
- :func:`load_pairs_csv` reads a ready-made pair list such as Kaggle's
  ``train_data.csv``.
- :func:`make_synthetic_signatures` generates signature-like images, so that
  tests, examples and documentation need no download.
"""

from ._folders import IMAGE_EXTENSIONS, LAYOUTS, load_signatures
from ._pairs import load_pairs_csv, make_pairs
from ._synthetic import make_synthetic_signatures

__all__ = [
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "load_pairs_csv",
    "load_signatures",
    "make_pairs",
    "make_synthetic_signatures",
]
