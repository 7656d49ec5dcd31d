"""Stroke descriptors: numbers that describe how a signature's ink was written.

The canvas a :class:`~skseg.SiameseVerifier` sees is the signature fitted to
155 x 220 pixels: it no longer shows how wide the pen's strokes were, nor the
fine turns of the stroke at the scan's own resolution, and skilled forgers
copy the overall shape more faithfully than these. :func:`stroke_descriptor`
takes the ink mask that :class:`~skseg.SignaturePreprocessor` finds (Otsu's
threshold on a lightly blurred copy, cropped to the ink's box) at the scan's
resolution and returns :data:`N_STROKE_FEATURES` numbers; only the mask, never
its grey levels, which carry the scanner's settings rather than the hand.

The parts, in order (:data:`STROKE_PARTS`): the ink box and ink amount, slant
and spread (second moments), connected components; stroke widths (the
distance transform on the ridge of the strokes) and contour roughness; a
4 x 8 ink-density grid; column and row profiles; gradient-direction
histograms on 2 x 4 and 4 x 8 cells; and the histogram of the 256 3 x 3 ink
patterns (a pixel's 8 neighbours) after scaling the ink so that its median
stroke is about 2 pixels wide: how the pen moved, at the scale of the stroke.

This module is numpy, scipy and Pillow only: preprocessing worker processes
import it without torch.
"""

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["N_STROKE_FEATURES", "STROKE_PARTS", "stroke_descriptor"]

#: The descriptor's parts and their lengths, in order.
STROKE_PARTS = {
    "box and moments": 13,
    "stroke widths and roughness": 5,
    "density grid 4 x 8": 32,
    "column and row profiles": 24,
    "gradient directions 2 x 4": 64,
    "gradient directions 4 x 8": 256,
    "3 x 3 ink patterns": 256,
}
#: Length of one descriptor.
N_STROKE_FEATURES = sum(STROKE_PARTS.values())

_DIRECTION_BINS = 8
# The shape at one size (width, height), for the density grid and the directions.
_SHAPE_SIZE = (128, 64)


def stroke_descriptor(ink):
    """The :data:`N_STROKE_FEATURES` numbers of one ink mask.

    Parameters
    ----------
    ink : ndarray of shape (H, W), bool, or None
        The ink (True) of one signature, cropped to its box, at the scan's
        resolution. None (no ink) gives a row of NaN: unknown, which the
        verifier's classifier takes as missing values.

    Returns
    -------
    ndarray of shape (N_STROKE_FEATURES,), float64
        The parts of :data:`STROKE_PARTS`, in order.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.strokes import N_STROKE_FEATURES, stroke_descriptor
    >>> ink = np.zeros((20, 60), dtype=bool)
    >>> ink[8:12, :] = True                      # one horizontal stroke, 4 pixels wide
    >>> row = stroke_descriptor(ink)
    >>> row.shape == (N_STROKE_FEATURES,)
    True
    >>> np.exp(row[:2]).round()                  # the ink box: height and width
    array([20., 60.])
    >>> bool(np.isnan(stroke_descriptor(None)).all())
    True
    """
    return _descriptor_and_stroke_mask(ink)[0]


def _descriptor_and_stroke_mask(ink):
    """:func:`stroke_descriptor` of ``ink`` and the mask at the stroke's scale it
    computed on the way (:func:`_at_stroke_scale`; None for no ink)."""
    if ink is None:
        return np.full(N_STROKE_FEATURES, np.nan), None
    ink = np.asarray(ink, dtype=bool)
    if ink.ndim != 2 or not ink.any():
        raise ValueError(
            f"stroke_descriptor takes a 2-D mask with some ink (or None for no ink); got "
            f"an array of shape {ink.shape} with {int(ink.sum())} ink pixels."
        )
    height, width = ink.shape
    area = ink.sum()
    perimeter = area - ndimage.binary_erosion(ink).sum()
    ys, xs = np.nonzero(ink)
    dy, dx = ys - ys.mean(), xs - xs.mean()
    m20, m02, m11 = (dy ** 2).mean(), (dx ** 2).mean(), (dx * dy).mean()
    slant = 0.5 * np.arctan2(2 * m11, m02 - m20)
    n_components = ndimage.label(ink)[1]
    box_and_moments = [
        np.log(height), np.log(width), np.log(area), area / (height * width),
        np.log(2 * area / max(perimeter, 1)), np.sin(2 * slant), np.cos(2 * slant),
        m11 / np.sqrt(m20 * m02 + 1e-9), ys.mean() / height, xs.mean() / width,
        np.sqrt(m20) / height, np.sqrt(m02) / width, np.log1p(n_components),
    ]
    ridge = _ridge_widths(ink)
    quartiles = np.percentile(ridge, [10, 50, 90])
    smoothed = ndimage.binary_closing(ndimage.binary_opening(ink))
    smooth_perimeter = smoothed.sum() - ndimage.binary_erosion(smoothed).sum()
    widths_and_roughness = [*np.log1p(quartiles), np.log(perimeter / max(smooth_perimeter, 1)),
                            np.log1p(ridge.std())]
    small = _resized(ink, *_SHAPE_SIZE)
    grid = small.reshape(4, 16, 8, 16).mean(axis=(1, 3)).ravel()
    profiles = [np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(p)), p / area)
                for p, n in ((ink.sum(axis=0), 16), (ink.sum(axis=1), 8))]
    scaled = _at_stroke_scale(ink, quartiles[1])
    descriptor = np.concatenate([
        box_and_moments, widths_and_roughness, grid / max(grid.sum(), 1e-12), *profiles,
        _direction_histograms(small, [(2, 4), (4, 8)]),
        _neighbour_patterns(scaled),
    ]).astype(np.float64)
    return descriptor, scaled


def _ridge_widths(ink):
    """The distance transform of the mask ``ink`` on the strokes' ridge (its local
    maxima): half the pen's width at each point along the strokes."""
    distance = ndimage.distance_transform_edt(ink)
    return distance[ink & (distance >= ndimage.maximum_filter(distance, 3))]


def _at_stroke_scale(ink, median_width):
    """The mask ``ink`` resized so that its median ridge width ``median_width`` (see
    :func:`_ridge_widths`) becomes about 2 pixels (shrunk at most 5 times, never
    enlarged): how the pen moved, alike for scans of any resolution."""
    return _scaled(ink, float(np.clip(2.0 / max(median_width, 0.5), 0.2, 1.0))) > 0.5


def _direction_histograms(image, grids):
    """Gradient-direction histograms (magnitude-weighted, 8 bins over 180 degrees) of
    the cells of each ``(rows, cols)`` grid in ``grids``, each grid's normalised to
    sum to 1; the gradient is computed once for all grids."""
    gy, gx = np.gradient(ndimage.gaussian_filter(image, 1.0))
    magnitude = np.hypot(gx, gy)
    bins = np.minimum((np.arctan2(gy, gx) % np.pi) / np.pi * _DIRECTION_BINS,
                      _DIRECTION_BINS - 1).astype(int)
    height, width = image.shape
    histograms = []
    for rows, cols in grids:
        cells = []
        for r in range(rows):
            for c in range(cols):
                cell = (slice(r * height // rows, (r + 1) * height // rows),
                        slice(c * width // cols, (c + 1) * width // cols))
                cells.append(np.bincount(bins[cell].ravel(), magnitude[cell].ravel(),
                                         _DIRECTION_BINS))
        histogram = np.concatenate(cells)
        histograms.append(histogram / max(histogram.sum(), 1e-12))
    return np.concatenate(histograms)


def _neighbour_patterns(ink):
    """Histogram of the 256 configurations of the 8 neighbours of each ink pixel."""
    padded = np.pad(ink, 1)
    height, width = ink.shape
    code = np.zeros(ink.shape, dtype=np.int64)
    offsets = [(dy, dx) for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    for bit, (dy, dx) in enumerate(offsets):
        code |= padded[dy:dy + height, dx:dx + width].astype(np.int64) << bit
    histogram = np.bincount(code[ink], minlength=256).astype(np.float64)
    return histogram / max(histogram.sum(), 1.0)


def _scaled(ink, scale):
    """The mask :func:`_resized` by the factor ``scale``, at least 8 pixels a side."""
    height, width = ink.shape
    return _resized(ink, max(8, round(width * scale)), max(8, round(height * scale)))


def _resized(ink, width, height):
    """The mask box-averaged to ``width`` x ``height``, as ink fractions in [0, 1]."""
    image = Image.fromarray(ink.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.BOX), np.float64) / 255
