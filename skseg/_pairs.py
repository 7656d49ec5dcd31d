"""Checking pair input and folding it into a bank of unique images.

The verifier receives canvases, ``(n_pairs, 2, H, W)``, usually from
:class:`~skseg.SignaturePreprocessor`. Most images appear in many pairs, so
everything downstream works on the unique images plus an index: training and
prediction cost then grows with the number of distinct signatures, not pairs.
"""

import hashlib

import numpy as np

_HINT = "Pass preprocessed canvases, e.g. the output of skseg.SignaturePreprocessor."


def to_canvases(X, *, what="pairs", ndim=4):
    """Validate canvases and return them as uint8, without copying uint8 input.

    ``what="pairs"``: shape ``(n_pairs, 2, H, W)``; ``what="images"``:
    ``(n_images, H, W)``. uint8 is taken as is; floats must be finite and lie in
    [0, 1] and are quantised to 8 bits; other integers must lie in [0, 255].
    """
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    item = "pair" if what == "pairs" else "image"
    expected = "(n_pairs, 2, H, W)" if what == "pairs" else "(n_images, H, W)"
    if X.dtype == object or X.dtype.kind in "USV":
        raise TypeError(
            f"{what} must be a numeric array of shape {expected}; got an array of "
            f"{X.dtype} items (file paths or images?). {_HINT}"
        )
    if X.ndim != ndim or (what == "pairs" and X.shape[1] != 2):
        raise ValueError(f"{what} must have shape {expected}; got shape {X.shape}. {_HINT}")
    if X.shape[0] == 0:
        raise ValueError(f"{what} is empty: shape {X.shape}.")
    if X.dtype == np.uint8:
        return X
    if X.dtype == bool or X.dtype.kind not in "iuf":
        raise TypeError(f"{what} must be uint8, another integer type or float; got {X.dtype}.")
    per_item = X.reshape(X.shape[0], -1)
    if X.dtype.kind == "f":
        bad = ~np.isfinite(per_item).all(axis=1)
        if bad.any():
            raise ValueError(f"{what}: {item} {int(np.flatnonzero(bad)[0])} contains NaN or inf.")
        low, high, scale = 0.0, 1.0, 255.0
    else:
        low, high, scale = 0, 255, 1
    out_of_range = (per_item.min(axis=1) < low) | (per_item.max(axis=1) > high)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(
            f"{what}: {item} {i} has values in [{per_item[i].min()}, {per_item[i].max()}]; "
            f"{X.dtype} canvases must lie in [{low}, {high}]."
        )
    return np.rint(X * scale).astype(np.uint8)


def deduplicate(images):
    """Unique images and, for each input image, its position among them.

    Parameters
    ----------
    images : np.ndarray of shape (n, H, W), uint8

    Returns
    -------
    bank : np.ndarray of shape (n_unique, H, W)
        Unique images, in order of first appearance.
    index : np.ndarray of shape (n,), int64
    """
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    seen = {}
    index = np.empty(len(flat), dtype=np.int64)
    first = []
    for i, row in enumerate(flat):
        key = hashlib.blake2b(row.data, digest_size=16).digest()
        position = seen.setdefault(key, len(seen))
        if position == len(first):
            first.append(i)
        index[i] = position
    return images.reshape(len(images), *images.shape[1:])[first], index


def pairs_to_bank(pairs):
    """Fold uint8 pairs ``(n, 2, H, W)`` into ``bank (u, H, W)`` and ``index (n, 2)``."""
    n = len(pairs)
    bank, index = deduplicate(pairs.reshape(2 * n, *pairs.shape[2:]))
    return bank, index.reshape(n, 2)
