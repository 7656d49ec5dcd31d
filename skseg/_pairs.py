"""Checking pair input and folding it into a bank of unique images.

The verifier receives canvases, ``(n_pairs, 2, H, W)``, usually from
:class:`~skseg.SignaturePreprocessor`. Most images appear in many pairs, so
everything downstream works on the unique images plus an index: training and
prediction cost then grows with the number of distinct signatures, not pairs.
"""

import hashlib
from numbers import Integral

import numpy as np

_HINT = "Pass preprocessed canvases, e.g. the output of skseg.SignaturePreprocessor."


class PairedCanvases:
    """Pairs of canvases that store each distinct image once.

    Behaves like the uint8 array ``images[index]`` of shape
    ``(n_pairs, 2, H, W)`` without materialising it: a CEDAR pair list of
    30,000 pairs over 2,640 scans holds 2,640 canvases, not 60,000.
    :class:`~skseg.SiameseVerifier` uses the bank directly; scikit-learn's
    cross-validation indexes it like an array (``X[indices]`` keeps the bank
    and subsets the index); ``np.asarray`` materialises it.

    Parameters
    ----------
    images : ndarray of shape (n_images, H, W), uint8
        The distinct canvases.
    index : ndarray of shape (n_pairs, 2), int
        Positions in ``images`` of each pair's reference and questioned image.
    sizes : ndarray of shape (n_images, 2), default=None
        Height and width of each image's ink before it was fitted to the
        canvas, in pixels of the scan or in inches, one unit for all (NaN where
        unknown, e.g. a blank image), as :class:`~skseg.SignaturePreprocessor`
        records them (``ink_size_unit``). The canvas alone
        does not show how large a signature was written;
        :class:`~skseg.SiameseVerifier` uses the ratio of the two sizes of a
        pair (``size_weight``). None: not known.
    strokes : ndarray of shape (n_images, n_features), default=None
        Each image's stroke descriptor (:func:`skseg.strokes.stroke_descriptor`,
        taken from its ink at the scan's resolution; NaN rows where an image has
        no ink), as :class:`~skseg.SignaturePreprocessor` computes them
        (``stroke_descriptors=True``); :class:`~skseg.SiameseVerifier` learns
        from the differences of a pair's two (``stroke_weight``). None: not known.
    masks : sequence of n_images 2-D arrays or None, default=None
        Each image's ink mask at the scale of the stroke (None where an image
        has no ink), as :class:`~skseg.SignaturePreprocessor` keeps them
        (``stroke_masks=True``); :class:`~skseg.SiameseVerifier`'s network of
        small windows learns from them (``patch_weight``). Kept as an object
        array, never copied. None: not known.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg import PairedCanvases
    >>> bank = np.zeros((3, 4, 5), dtype=np.uint8)
    >>> pairs = PairedCanvases(bank, [[0, 1], [0, 2], [1, 2]])
    >>> pairs.shape, pairs[[0, 2]].shape, np.asarray(pairs).shape
    ((3, 2, 4, 5), (2, 2, 4, 5), (3, 2, 4, 5))
    """

    def __init__(self, images, index, sizes=None, strokes=None, masks=None):
        images = np.asarray(images)
        index = np.asarray(index)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                "PairedCanvases: images must be a uint8 array of shape (n_images, H, W); "
                f"got {images.dtype} of shape {images.shape}."
            )
        if index.ndim != 2 or index.shape[1] != 2 or index.dtype.kind not in "iu":
            raise ValueError(
                "PairedCanvases: index must be an integer array of shape (n_pairs, 2); "
                f"got {index.dtype} of shape {index.shape}."
            )
        if index.size and (index.min() < 0 or index.max() >= len(images)):
            out_of_range = (index < 0).any(axis=1) | (index >= len(images)).any(axis=1)
            bad = int(np.flatnonzero(out_of_range)[0])
            raise ValueError(
                f"PairedCanvases: pair {bad} refers to image {index[bad].tolist()}, "
                f"but there are {len(images)} images."
            )
        if sizes is not None:
            sizes = np.asarray(sizes, dtype=np.float64)
            if sizes.shape != (len(images), 2):
                raise ValueError(
                    "PairedCanvases: sizes must have shape (n_images, 2) = "
                    f"{(len(images), 2)}, one (height, width) per image; got {sizes.shape}."
                )
            bad = ~(np.isnan(sizes) | (sizes > 0)).all(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"PairedCanvases: image {i} has size {sizes[i].tolist()}; sizes must be "
                    "positive (height, width) in pixels, or NaN where unknown."
                )
        if strokes is not None:
            strokes = np.asarray(strokes, dtype=np.float64)
            if strokes.ndim != 2 or len(strokes) != len(images):
                raise ValueError(
                    "PairedCanvases: strokes must have shape (n_images, n_features), one "
                    f"descriptor per image of the {len(images)}; got {strokes.shape}."
                )
        if masks is not None:
            masks = _as_masks(masks, len(images))
        self.images = images
        self.index = index.astype(np.int64, copy=False)
        self.sizes = sizes
        self.strokes = strokes
        self.masks = masks

    @property
    def shape(self):
        return (len(self.index), 2, *self.images.shape[1:])

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __len__(self):
        return len(self.index)

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[1] is Ellipsis:
            key = key[0]  # scikit-learn's row indexing: X[rows, ...]
        if isinstance(key, tuple):
            return np.asarray(self)[key]
        if isinstance(key, Integral):
            return self.images[self.index[key]]
        return PairedCanvases(self.images, self.index[key], self.sizes, self.strokes,
                              self.masks)

    def __array__(self, dtype=None, copy=None):
        out = self.images[self.index]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        carried = [name for name, value in (("sizes", self.sizes), ("strokes", self.strokes),
                                            ("masks", self.masks)) if value is not None]
        sized = f", with {', '.join(carried[:-1])} and {carried[-1]}" if len(carried) > 1 else (
            f", with {carried[0]}" if carried else "")
        return (
            f"PairedCanvases({len(self.index)} pairs of {self.images.shape[1:]} canvases, "
            f"{len(self.images)} distinct images{sized})"
        )


def _as_masks(masks, n_images):
    """``masks`` as an object array of ``n_images`` 2-D arrays or None, or a refusal
    naming the image at fault."""
    if isinstance(masks, np.ndarray) and masks.dtype == object and masks.ndim == 1:
        out = masks
    else:
        out = np.empty(len(masks), dtype=object)
        out[:] = list(masks)
    if len(out) != n_images:
        raise ValueError(
            f"PairedCanvases: masks must hold one mask per image of the {n_images}; "
            f"got {len(out)}."
        )
    for i, mask in enumerate(out):
        if mask is not None and (not isinstance(mask, np.ndarray) or mask.ndim != 2):
            raise ValueError(
                f"PairedCanvases: mask {i} must be a 2-D array (or None for an image "
                f"without ink); got {type(mask).__name__} of shape {np.shape(mask)}."
            )
    return out


def size_distances(X):
    """How differently large the two signatures of each pair were written.

    ``|log(h1 / h2)| + |log(w1 / w2)|`` of the two ink boxes, shape
    ``(n_pairs,)``; 0 where a size is unknown (no evidence either way). None
    when ``X`` carries no sizes (an array, or :class:`PairedCanvases` without).
    Ratios, so the scan resolution cancels when both images share it.
    """
    if not isinstance(X, PairedCanvases) or X.sizes is None:
        return None
    log_sizes = np.log(X.sizes)
    difference = np.abs(log_sizes[X.index[:, 0]] - log_sizes[X.index[:, 1]]).sum(axis=1)
    return np.nan_to_num(difference, nan=0.0)


def stroke_differences(X):
    """``|d1 - d2|`` of the stroke descriptors of each pair's two images.

    Shape ``(n_pairs, n_features)``; NaN where an image has no ink. None when
    ``X`` carries no descriptors (an array, or :class:`PairedCanvases` without).
    """
    if not isinstance(X, PairedCanvases) or X.strokes is None:
        return None
    return descriptor_differences(X.strokes, X.index)


def descriptor_differences(descriptors, index):
    """``|d1 - d2|`` of the rows of ``descriptors`` that each ``(n_pairs, 2)`` index
    row names."""
    return np.abs(descriptors[index[:, 0]] - descriptors[index[:, 1]])


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


def as_bank(X):
    """Validated pairs as ``bank (u, H, W)`` uint8 and ``index (n, 2)``.

    Arrays are checked with :func:`to_canvases` and their identical images
    folded together. :class:`PairedCanvases` are taken as they are, less the
    images no pair uses (a cross-validation split shares the whole bank).
    """
    if isinstance(X, PairedCanvases):
        if len(X) == 0:
            raise ValueError(f"pairs is empty: shape {X.shape}.")
        used, index = np.unique(X.index, return_inverse=True)
        if len(used) == len(X.images):
            return X.images, X.index
        return X.images[used], index.reshape(X.index.shape)
    return pairs_to_bank(to_canvases(X, what="pairs"))


def pairs_to_bank(pairs):
    """Fold uint8 pairs ``(n, 2, H, W)`` into ``bank (u, H, W)`` and ``index (n, 2)``."""
    n = len(pairs)
    bank, index = deduplicate(pairs.reshape(2 * n, *pairs.shape[2:]))
    return bank, index.reshape(n, 2)
