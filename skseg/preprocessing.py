"""Signature normalisation: images in, fixed-size ``uint8`` canvases out.

:class:`SignaturePreprocessor` owns everything about pixels (the verifier owns
everything about learning): this module never imports torch.
"""

import os
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from joblib import Parallel, delayed
from PIL import Image, ImageFilter
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._image import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    ImageTooLargeError,
    _where,
    describe_item,
    load_grayscale,
)
from ._pairs import PairedCanvases
from .strokes import _descriptor_and_stroke_mask, stroke_descriptor

__all__ = [
    "BlankImageError",
    "BlankImageWarning",
    "ImageLoadError",
    "ImageTooLargeError",
    "SignaturePreprocessor",
]

_NUMERIC_KINDS = "biufc"
# Blank items named in one warning or error; the rest are counted.
_MAX_NAMED_BLANKS = 10


class BlankImageWarning(UserWarning):
    """An image has no ink; it became an empty canvas (``on_blank="warn"``)."""


class BlankImageError(ValueError):
    """An image has no ink (``on_blank="raise"``)."""


class _Canvas(NamedTuple):
    """One preprocessed image."""

    canvas: np.ndarray
    is_blank: bool
    ink_size: tuple  # (height, width) of the ink box in the input's pixels; NaN if blank
    strokes: np.ndarray = None  # stroke descriptor (NaN if blank), if asked for
    mask: np.ndarray = None  # ink mask at the stroke's scale (None if blank), if asked for


_NO_INK = (float("nan"), float("nan"))
_NO_STROKES = stroke_descriptor(None)  # a blank image's: all unknown


class _Settings(NamedTuple):
    """The parameters one worker needs, as a small picklable value."""

    canvas_size: tuple
    flatten_background: bool
    blur_radius: float
    min_ink_contrast: float
    remove_background: bool
    ink_contrast: str
    crop: bool
    invert: bool
    max_pixels: int
    ink_size_unit: str
    stroke_descriptors: bool
    stroke_masks: bool


# auto_wrap_output_keys=None: canvases are not a feature table, so no set_output.
class SignaturePreprocessor(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Normalise signature images into fixed-size canvases, ink high, background 0.

    Each image goes through these steps, each steered by a parameter:

    1. **Load** (``max_pixels``): any PIL mode to 8-bit grayscale, transparency
       composited over white, EXIF orientation applied (see ``skseg._image``).
    2. **Flatten the background** (``flatten_background``, off by default): divide by
       a smooth estimate of the paper (a max filter on a reduced copy, blurred), for
       scans with shadows or uneven lighting.
    3. **Threshold** (``blur_radius``, ``min_ink_contrast``): Otsu's threshold on the
       256-bin histogram of a Gaussian-blurred copy (as luizgh/sigver). Pixels at or
       below it are ink. An image whose two Otsu classes differ by less than
       ``min_ink_contrast`` grey levels has no ink (see ``on_blank``).
    4. **Crop** (``crop``): to the bounding box of the ink of the blurred copy, so
       isolated specks smaller than the blur do not widen the box.
    5. **Remove the background** (``remove_background``, ``ink_contrast``): every
       pixel above the threshold becomes exactly 0; ink pixels become high values.
    6. **Resize and centre** (``canvas_size``): scale, keeping the aspect ratio, so
       the image fits the canvas (up or down, Lanczos filter), and centre it.
    7. **Invert** (``invert``): ink high and background 0 (``invert=False`` gives dark
       ink on a background of exactly 255).

    Alongside the canvas, each image's **ink size** (the box of step 4) and,
    with ``stroke_descriptors``, its **stroke descriptor** (stroke widths,
    directions and 3 x 3 ink patterns of the ink mask of step 3, at the scan's
    own resolution: see :mod:`skseg.strokes`) are kept: the canvas no longer
    shows them, and :class:`~skseg.SiameseVerifier` uses both.

    Why the ink levels are stretched by default: the background removal makes the
    paper exactly 0 whatever its grey level, but the ink can still carry the scan's
    brightness. With ``ink_contrast="keep"`` (sigver's ``255 - grey``) a brighter scan
    gives lighter ink, and the faintest ink kept sits at ``255 - threshold``, a level
    that follows the paper's grey level. The default ``"stretch"`` maps the threshold
    to 1 and the darkest ink (1st percentile) to 255, linearly: a scan's gain and
    offset do not carry through, and since the threshold lies halfway between ink and
    paper, noise is amplified little. It does not undo a change of contrast curve,
    and CEDAR's forgeries differ from its genuine scans by such a curve: there
    ``"equalize"`` (rank of each level among the ink pixels) or ``"binary"`` (all ink
    255, no grey level) leave less of the scan in the canvas; ``"equalize"`` spreads
    the noise of uniformly dark strokes over the whole range. No level mapping undoes
    everything: a contrast curve also moves Otsu's threshold, hence which faint
    pixels count as ink.
    ``bench/background_shortcut.py`` measures what each choice leaves.

    The transformer is stateless: ``fit`` only validates the parameters, and
    ``transform`` works without it. The output depends only on the input and the
    parameters (the same bytes for ``n_jobs=1`` and ``n_jobs=2``).

    Parameters
    ----------
    canvas_size : tuple of (int, int), default=(155, 220)
        Output ``(height, width)`` in pixels; the default is SigNet's input size.
    remove_background : bool, default=True
        Set every pixel lighter than Otsu's threshold to 0. With ``False`` the output
        is the inverted grayscale scan, background included (``ink_contrast`` is then
        ignored): the paper's grey level, which differs between genuine and forged
        scans in some datasets (CEDAR), is kept.
    blur_radius : float, default=1.0
        Standard deviation, in pixels, of the Gaussian blur applied to the copy used
        for the threshold and the crop box; 0 disables it. It is capped at 1% of the
        image's shorter side, so tiny images keep their thin strokes.
    flatten_background : bool, default=False
        Correct uneven lighting before thresholding. Cheap, but strokes wider than
        about 8% of the image's shorter side may be lightened.
    crop : bool, default=True
        Crop to the ink's bounding box before resizing; with ``False`` the whole scan,
        margins included, is fitted to the canvas.
    ink_contrast : {"stretch", "equalize", "keep", "binary"}, default="stretch"
        Grey levels of the ink after background removal (ink pixels always get a
        level of at least 1): ``"stretch"`` maps the threshold to 1 and the darkest
        ink to 255, linearly; ``"equalize"`` maps each level to the fraction of the
        image's ink at that level or lighter (the same levels for any increasing
        change of the ink's grey levels, gamma included, as long as Otsu finds the
        same ink pixels); ``"keep"`` uses ``255 - grey`` as sigver; ``"binary"`` sets
        all ink to 255.
    min_ink_contrast : float, default=20.0
        Smallest difference, in grey levels, between the mean background and the mean
        ink level (on the blurred copy) for an image to count as having ink. Paper
        noise alone gives a difference of a few levels; ink on paper, of a hundred.
    invert : bool, default=True
        Output ink high on a background of 0. ``False`` gives dark ink on 255.
    on_blank : {"warn", "raise", "ignore"}, default="warn"
        What to do with an image that has no ink (blank paper, or below
        ``min_ink_contrast``). It always becomes an empty canvas; ``"warn"`` also
        emits one :class:`BlankImageWarning` naming the blank images, ``"raise"``
        raises :class:`BlankImageError` instead.
    max_pixels : int or None, default=50_000_000
        Refuse images with more pixels (decompression bombs; checked on a file's
        header before decoding). ``None`` disables the check.
    n_jobs : int or None, default=None
        Number of jobs that load and preprocess the distinct images in parallel
        (joblib; worker processes by default, which scale better than threads
        here; :func:`joblib.parallel_config` can choose another backend). ``None``
        means 1 unless in a :func:`joblib.parallel_config` context; -1 means all
        processors.
    compact_pairs : bool, default=True
        Return pairs as a :class:`~skseg.PairedCanvases`, which stores each
        distinct image once, carries the size of each image's ink and its
        stroke descriptor (which the canvas no longer shows, and which
        :class:`~skseg.SiameseVerifier`'s ``size_weight`` and ``stroke_weight``
        use), and which the verifier takes as it is. Memory grows with the
        distinct images, not the pairs. ``False``: a plain ``(n_pairs, 2, H, W)``
        array, without the sizes and descriptors. Single images are
        always an array (:meth:`transform_with_cues` gives their sizes and
        descriptors).
    ink_size_unit : {"pixels", "inches"}, default="pixels"
        Unit of the ink sizes. ``"pixels"``: pixels of the input image, so two
        sizes compare only between scans of one resolution. ``"inches"``: each
        size divided by the resolution its file records (Pillow's
        ``info["dpi"]``: PNG, JPEG, TIFF and BMP headers), so that references
        and questioned signatures scanned at different resolutions compare;
        every item must then be a file or PIL image that records one, else a
        ``ValueError`` names the item. Trust it only where the scanners write
        their true resolution (some software writes 72 or 96 dpi whatever the
        scan).
    stroke_descriptors : bool, default=True
        Also describe each image's ink at the scan's resolution
        (:func:`skseg.strokes.stroke_descriptor`, 650 numbers), carried with the
        pairs (:class:`~skseg.PairedCanvases` ``strokes``) for the verifier's
        ``stroke_weight``. It costs about 6 ms per CEDAR scan and 23 ms per
        full-resolution SigComp 2011 scan on one core. ``False``: none (the
        verifier then uses the network alone).
    stroke_masks : bool, default=False
        Also keep each image's ink mask at the scale of the stroke (resized so
        that its median stroke is about 2 pixels wide, as the descriptors' 3 x 3
        ink patterns see it; bool, cropped to the ink), carried with the pairs
        (:class:`~skseg.PairedCanvases` ``masks``) for the verifier's
        ``patch_weight``. Off by default because it holds one mask per distinct
        image in memory: about 25 KB per CEDAR scan and 100 KB per SigComp 2011
        scan. The mask comes from the descriptor's own pass, so it costs no extra
        time beside it; with ``stroke_descriptors=False`` the descriptor is still
        computed, then dropped.

    See Also
    --------
    skseg.SiameseVerifier : The verifier that consumes the canvases.

    Notes
    -----
    **Input.** ``X`` is one of:

    - a sequence or 1-D array of items (``n_images`` single images), or an array-like
      of shape ``(n_pairs, 2)`` of items (pairs), where an item is a path (str or
      os.PathLike), a PIL image, or an image array ``(H, W)`` / ``(H, W, C)``. A row
      that is a list, tuple or 1-D object array is a pair; anything else is an item.
      Items may have different sizes.
    - a two-column pandas DataFrame (pairs) or a Series (single images).
    - a numeric array of shape ``(n_images, H, W)`` (single images), or
      ``(n_pairs, 2, H, W)`` / ``(n_pairs, 2, H, W, C)`` (pairs). Other numeric
      shapes are refused, and so is ``(n, H, W)`` with ``W <= 4``, which looks like
      one colour image: pass a list of arrays instead.

    **Output.** ``uint8`` of shape ``(n_images, H, W)``, or for pairs a
    :class:`~skseg.PairedCanvases` that behaves like ``(n_pairs, 2, H, W)``
    (``np.asarray`` makes it one; ``compact_pairs=False`` returns the array).

    **Errors** name the item, counting from 0 like Python: ``"image 4 (path 'a.png'):
    no such file."`` or ``"pair 3, second image (...)"``. Files that are missing or
    are directories raise ``FileNotFoundError`` / ``IsADirectoryError``; undecodable,
    truncated or empty images raise :class:`ImageLoadError` (a ``ValueError``);
    images above ``max_pixels`` raise :class:`ImageTooLargeError`; items of the wrong
    type ``TypeError``; arrays of the wrong shape or values ``ValueError``.

    **Cost.** Each distinct path (and each distinct PIL image or array object) is
    loaded and preprocessed once per call, however many pairs it appears in.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.preprocessing import SignaturePreprocessor
    >>> scan = np.full((60, 120), 240, dtype=np.uint8)   # grey paper
    >>> scan[25:35, 10:110] = 40                          # a dark stroke
    >>> prep = SignaturePreprocessor(canvas_size=(32, 64))
    >>> canvases = prep.fit_transform([scan])
    >>> canvases.shape, canvases.dtype
    ((1, 32, 64), dtype('uint8'))
    >>> int(canvases.max()), int(canvases[0, 0, 0])       # ink high, background 0
    (255, 0)
    >>> prep.transform([[scan, scan]]).shape               # one pair
    (1, 2, 32, 64)
    >>> prep.transform([[scan, scan]]).sizes               # its ink: 10 x 100 pixels
    array([[ 10., 100.]])
    >>> prep.transform([[scan, scan]]).strokes.shape       # its stroke descriptor
    (1, 650)
    """

    _parameter_constraints: dict = {
        "canvas_size": [tuple, list],
        "remove_background": ["boolean"],
        "blur_radius": [Interval(Real, 0, None, closed="left")],
        "flatten_background": ["boolean"],
        "crop": ["boolean"],
        "ink_contrast": [StrOptions({"stretch", "equalize", "keep", "binary"})],
        "min_ink_contrast": [Interval(Real, 0, 255, closed="both")],
        "invert": ["boolean"],
        "on_blank": [StrOptions({"warn", "raise", "ignore"})],
        "max_pixels": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "compact_pairs": ["boolean"],
        "ink_size_unit": [StrOptions({"pixels", "inches"})],
        "stroke_descriptors": ["boolean"],
        "stroke_masks": ["boolean"],
    }

    def __init__(
        self,
        canvas_size=(155, 220),
        *,
        remove_background=True,
        blur_radius=1.0,
        flatten_background=False,
        crop=True,
        ink_contrast="stretch",
        min_ink_contrast=20.0,
        invert=True,
        on_blank="warn",
        max_pixels=DEFAULT_MAX_PIXELS,
        n_jobs=None,
        compact_pairs=True,
        ink_size_unit="pixels",
        stroke_descriptors=True,
        stroke_masks=False,
    ):
        self.canvas_size = canvas_size
        self.remove_background = remove_background
        self.blur_radius = blur_radius
        self.flatten_background = flatten_background
        self.crop = crop
        self.ink_contrast = ink_contrast
        self.min_ink_contrast = min_ink_contrast
        self.invert = invert
        self.on_blank = on_blank
        self.max_pixels = max_pixels
        self.n_jobs = n_jobs
        self.compact_pairs = compact_pairs
        self.ink_size_unit = ink_size_unit
        self.stroke_descriptors = stroke_descriptors
        self.stroke_masks = stroke_masks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters; the images are not read.

        Parameters
        ----------
        X : array-like
            Ignored (see the class docstring for what ``transform`` accepts).
        y : None
            Ignored.

        Returns
        -------
        self : SignaturePreprocessor
            The transformer itself.
        """
        self._settings()
        return self

    def transform(self, X):
        """Preprocess each image of ``X`` into a canvas.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) or (n_images,)
            Paths, PIL images or arrays (see the class Notes for every accepted form).

        Returns
        -------
        canvases : ndarray of shape (n_pairs, 2, H, W) or (n_images, H, W), dtype uint8
            Ink high, background exactly 0 (with the default ``invert=True``), where
            ``(H, W)`` is ``canvas_size``. Pairs come as a :class:`~skseg.PairedCanvases`
            that carries each image's ink size, stroke descriptor and (with
            ``stroke_masks``) ink mask, unless ``compact_pairs=False``.
        """
        canvases, sizes, strokes, masks, inverse, batch_shape = self._distinct_canvases(X)
        if self.compact_pairs and len(batch_shape) == 2:
            return PairedCanvases(canvases, inverse.reshape(batch_shape), sizes, strokes, masks)
        return _per_item(canvases, inverse, batch_shape)

    def transform_with_sizes(self, X):
        """Canvases as :meth:`transform` makes them, and the size of each image's ink.

        The first two results of :meth:`transform_with_cues`, which see.

        Examples
        --------
        >>> import numpy as np
        >>> from skseg import PairedCanvases, SignaturePreprocessor
        >>> scan = np.full((60, 120), 240, dtype=np.uint8)
        >>> scan[25:35, 10:110] = 40                          # ink 10 x 100 pixels
        >>> canvases, sizes = SignaturePreprocessor(canvas_size=(32, 64)).transform_with_sizes(
        ...     [scan, scan[::2, ::2]])                       # the same, half the resolution
        >>> sizes.tolist()
        [[10.0, 100.0], [5.0, 50.0]]
        >>> PairedCanvases(canvases, [[0, 1]], sizes)
        PairedCanvases(1 pairs of (32, 64) canvases, 2 distinct images, with sizes)
        """
        canvases, sizes, _ = self.transform_with_cues(X)
        return canvases, sizes

    def transform_with_cues(self, X, *, return_masks=False):
        """Canvases as :meth:`transform` makes them, each image's ink size and its
        stroke descriptor (and, if asked, its ink mask at the stroke's scale).

        For building :class:`~skseg.PairedCanvases` from single images (enrol
        each scan once, then index pairs into them) with everything the
        verifier's size and stroke terms need.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) or (n_images,)
            As for :meth:`transform`.
        return_masks : bool, default=False
            Also return each image's ink mask at the stroke's scale (what the
            verifier's ``patch_weight`` needs); ``stroke_masks`` must be True.

        Returns
        -------
        canvases : ndarray of shape (n_pairs, 2, H, W) or (n_images, H, W), dtype uint8
            As :meth:`transform` with ``compact_pairs=False``.
        sizes : ndarray of shape (n_pairs, 2, 2) or (n_images, 2), float64
            Height and width of the ink's bounding box (the box ``crop`` crops
            to), in pixels of the input image or, with ``ink_size_unit="inches"``,
            in inches; NaN for an image without ink.
        strokes : ndarray of shape (n_pairs, 2, n_features) or (n_images, n_features)
            Each image's stroke descriptor (:func:`skseg.strokes.stroke_descriptor`;
            NaN for an image without ink), or None with ``stroke_descriptors=False``.
        masks : ndarray of shape (n_pairs, 2) or (n_images,), dtype object
            Only with ``return_masks=True``: each image's ink mask at the stroke's
            scale (a 2-D bool array; None for an image without ink).

        Examples
        --------
        >>> import numpy as np
        >>> from skseg import PairedCanvases, SignaturePreprocessor
        >>> scan = np.full((60, 120), 240, dtype=np.uint8)
        >>> scan[25:35, 10:110] = 40
        >>> canvases, sizes, strokes = SignaturePreprocessor(
        ...     canvas_size=(32, 64)).transform_with_cues([scan, scan[::2, ::2]])
        >>> strokes.shape
        (2, 650)
        >>> PairedCanvases(canvases, [[0, 1]], sizes, strokes)
        PairedCanvases(1 pairs of (32, 64) canvases, 2 distinct images, with sizes and strokes)
        """
        if return_masks and not self.stroke_masks:
            raise ValueError("transform_with_cues(return_masks=True) needs stroke_masks=True; "
                             "got stroke_masks=False.")
        canvases, sizes, strokes, masks, inverse, batch_shape = self._distinct_canvases(X)
        if strokes is not None:
            strokes = _per_item(strokes, inverse, batch_shape)
        cues = (_per_item(canvases, inverse, batch_shape), _per_item(sizes, inverse, batch_shape),
                strokes)
        return cues + (_per_item(masks, inverse, batch_shape),) if return_masks else cues

    def _distinct_canvases(self, X):
        """Canvases, ink sizes, stroke descriptors and masks (None if not asked for) of
        the distinct items of ``X``, the map from each item to them, and the batch shape."""
        # Stateless: transform may be called without fit, so it validates too.
        self._validate_params()
        settings = self._settings()
        items, labels, batch_shape = _as_items(X)
        unique, inverse = _dedupe(items)
        # Processes: decoding and resizing hold the GIL too often for threads to
        # scale (CEDAR on 2 cores: 1.0-1.5x with threads, 1.6-2.0x with processes).
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_preprocess_item)(items[k], labels[k], settings) for k in unique
        )
        blank = [
            _where(items[k], labels[k])
            for k, result in zip(unique, results)
            if result.is_blank
        ]
        if blank:
            self._report_blank(blank)
        canvases = np.stack([result.canvas for result in results])
        sizes = np.array([result.ink_size for result in results], dtype=np.float64)
        strokes = None
        if settings.stroke_descriptors:
            strokes = np.stack([result.strokes for result in results])
        masks = None
        if settings.stroke_masks:
            masks = np.empty(len(results), dtype=object)  # masks differ in shape
            masks[:] = [result.mask for result in results]
        return canvases, sizes, strokes, masks, inverse, batch_shape

    def _settings(self):
        size = self.canvas_size
        valid = (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in size)
        )
        if not valid:
            raise ValueError(
                "canvas_size must be (height, width), two positive integers; "
                f"got {size!r}."
            )
        return _Settings(
            canvas_size=(int(size[0]), int(size[1])),
            flatten_background=bool(self.flatten_background),
            blur_radius=float(self.blur_radius),
            min_ink_contrast=float(self.min_ink_contrast),
            remove_background=bool(self.remove_background),
            ink_contrast=self.ink_contrast,
            crop=bool(self.crop),
            invert=bool(self.invert),
            max_pixels=self.max_pixels,
            ink_size_unit=self.ink_size_unit,
            stroke_descriptors=bool(self.stroke_descriptors),
            stroke_masks=bool(self.stroke_masks),
        )

    def _report_blank(self, labels):
        if self.on_blank == "ignore":
            return
        named = "; ".join(labels[:_MAX_NAMED_BLANKS])
        if len(labels) > _MAX_NAMED_BLANKS:
            named += f"; and {len(labels) - _MAX_NAMED_BLANKS} more"
        message = (
            f"{len(labels)} image(s) have no ink (blank, or ink contrast below "
            f"min_ink_contrast={self.min_ink_contrast}): {named}."
        )
        if self.on_blank == "raise":
            raise BlankImageError(message)
        warnings.warn(message + " They became empty canvases.", BlankImageWarning, stacklevel=3)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Images, not a feature table: paths (strings), 1-D lists of items, 3-D batches.
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = False  # stateless
        tags.transformer_tags.preserves_dtype = []  # always uint8
        return tags


def _is_pandas(X):
    return type(X).__module__.partition(".")[0] == "pandas" and hasattr(X, "to_numpy")


def _is_row(element):
    """A pair is a list, a tuple or a 1-D non-numeric array; anything else is an item."""
    if isinstance(element, (list, tuple)):
        return True
    return (
        isinstance(element, np.ndarray)
        and element.dtype.kind not in _NUMERIC_KINDS
        and element.ndim == 1
    )


def _pair_label(i, j):
    return f"pair {i}, {'first' if j == 0 else 'second'} image"


def _as_items(X):
    """Flatten ``X`` into items, with a label for each and the batch shape."""
    if _is_pandas(X):
        if getattr(X, "ndim", None) == 2 and X.shape[1] != 2:
            raise ValueError(
                f"a DataFrame X must have 2 columns (one pair per row); got {X.shape[1]}."
            )
        X = X.to_numpy(dtype=object)
    if isinstance(X, (str, os.PathLike, Image.Image)):
        raise TypeError(
            f"X must be a collection of images, got a single {describe_item(X)}; "
            "wrap it in a list: [image]."
        )
    if isinstance(X, np.ndarray) and X.dtype.kind in _NUMERIC_KINDS:
        if X.ndim == 3 and X.shape[2] <= 4:
            # (H, W, C) is one colour image, not H images of width C: refuse to guess.
            raise ValueError(
                f"X is a numeric array of shape {X.shape}: one image with channels, or "
                f"images {X.shape[2]} pixels wide? Pass one image as [image]; a batch "
                "of images that narrow as a list."
            )
        if X.ndim == 3:
            items, labels, batch_shape = list(X), [f"image {i}" for i in range(len(X))], X.shape[:1]
        elif X.ndim in (4, 5) and X.shape[1] == 2:
            items = [X[i, j] for i in range(len(X)) for j in range(2)]
            labels = [_pair_label(i, j) for i in range(len(X)) for j in range(2)]
            batch_shape = X.shape[:2]
        else:
            raise ValueError(
                f"X is a numeric array of shape {X.shape}; expected a batch of shape "
                "(n_images, H, W), (n_pairs, 2, H, W) or (n_pairs, 2, H, W, C). For "
                "one image pass [image]; for colour images, a list of (H, W, C) arrays."
            )
    elif isinstance(X, np.ndarray) and X.ndim == 2:
        if X.shape[1] != 2:
            raise ValueError(
                f"X has shape {X.shape}; expected (n_pairs, 2) for pairs or (n_images,) "
                "for single images."
            )
        items = list(X.ravel())
        labels = [_pair_label(i, j) for i in range(len(X)) for j in range(2)]
        batch_shape = X.shape
    elif (isinstance(X, np.ndarray) and X.ndim == 1) or (
        isinstance(X, Sequence) and not isinstance(X, (str, bytes))
    ):
        items, labels, batch_shape = _sequence_items(list(X))
    else:
        raise TypeError(
            f"X must be a list, tuple, numpy array or pandas DataFrame of images; got "
            f"{describe_item(X) if isinstance(X, np.ndarray) else type(X).__name__}."
        )
    if not items:
        raise ValueError("X has no images (0 samples); expected at least one.")
    return items, labels, tuple(batch_shape)


def _sequence_items(rows):
    is_row = [_is_row(row) for row in rows]
    if not any(is_row):
        return rows, [f"image {i}" for i in range(len(rows))], (len(rows),)
    if not all(is_row):
        first_item = is_row.index(False)
        raise ValueError(
            f"X mixes pairs and single images: X[{is_row.index(True)}] is a pair but "
            f"X[{first_item}] is a {describe_item(rows[first_item])}."
        )
    lengths = {len(row) for row in rows}
    if lengths != {2}:
        bad = next(i for i, row in enumerate(rows) if len(row) != 2)
        raise ValueError(
            f"pairs must have 2 images, but X[{bad}] has {len(rows[bad])}; expected X of "
            "shape (n_pairs, 2) or (n_images,)."
        )
    items = [row[j] for row in rows for j in range(2)]
    labels = [_pair_label(i, j) for i in range(len(rows)) for j in range(2)]
    return items, labels, (len(rows), 2)


def _dedupe(items):
    """Indices of the first occurrence of each distinct item, and the inverse map.

    Paths are the same when their absolute forms are; other items when they are the
    same object (``items`` holds them, so their ids stay unique meanwhile).
    """
    position = {}
    unique, inverse = [], np.empty(len(items), dtype=np.intp)
    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)) and isinstance(os.fspath(item), str):
            key = ("path", os.path.abspath(os.fspath(item)))
        else:
            key = ("object", id(item))
        if key not in position:
            position[key] = len(unique)
            unique.append(k)
        inverse[k] = position[key]
    return unique, inverse


def _per_item(distinct, inverse, batch_shape):
    """Values of the distinct items laid out per item of ``X``: ``batch_shape + (...)``."""
    return distinct[inverse].reshape(batch_shape + distinct.shape[1:])


def _preprocess_item(item, label, settings):
    """Load and normalise one item into a :class:`_Canvas`, its ink size in the unit asked."""
    if settings.ink_size_unit == "pixels":
        gray = load_grayscale(item, max_pixels=settings.max_pixels, label=label)
        return _normalize(gray, settings)
    gray, resolution = load_grayscale(item, max_pixels=settings.max_pixels, label=label,
                                      with_resolution=True)
    if resolution is None:
        raise ValueError(
            f"{_where(item, label)}: ink_size_unit='inches' needs the resolution "
            "the scan was made at, and this item records none (arrays never do; files do "
            "when their header holds a dpi). Use files that record it, or "
            "ink_size_unit='pixels' if both images of every pair share one resolution."
        )
    result = _normalize(gray, settings)
    return result._replace(ink_size=tuple(np.divide(result.ink_size, resolution).tolist()))


def _otsu_threshold(gray):
    """Otsu's threshold of a uint8 image on its 256-bin histogram.

    Returns ``(threshold, contrast)``: ink is ``gray <= threshold``, and ``contrast``
    is the difference between the mean levels of the two classes. A single-level
    image has no split: ``(None, 0.0)``.
    """
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    count_low = np.cumsum(hist)
    sum_low = np.cumsum(hist * levels)
    count_high = count_low[-1] - count_low
    sum_high = sum_low[-1] - sum_low
    valid = (count_low > 0) & (count_high > 0)
    if not valid.any():
        return None, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / count_low
        mean_high = sum_high / count_high
        between = np.where(valid, count_low * count_high * (mean_high - mean_low) ** 2, -1.0)
    best = int(np.argmax(between))
    # Every level up to the next occupied one gives the same split: take the middle.
    next_level = best + 1 + int(np.flatnonzero(hist[best + 1 :])[0])
    threshold = (best + next_level - 1) // 2
    return threshold, float(mean_high[best] - mean_low[best])


def _blurred_threshold(gray, blur_radius):
    """``(blurred copy, Otsu threshold, contrast)``: ink is ``blurred <= threshold``."""
    # Tiny images have strokes of a pixel or less that a full blur would erase.
    radius = min(blur_radius, min(gray.shape) / 100)
    blurred = gray
    if radius > 0:
        blurred = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(radius)))
    threshold, contrast = _otsu_threshold(blurred)
    return blurred, threshold, contrast


def _ink_bounds(blurred, threshold):
    """Row and column slices of the ink's bounding box (ink: ``blurred <= threshold``).

    On the blurred copy, so that isolated specks smaller than the blur do not widen it.
    """
    ink = blurred <= threshold
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _ink_mask(gray, threshold, bounds):
    """The ink (``gray <= threshold``) at the scan's resolution, cropped to ``bounds``
    (the blurred copy's box), or None where none of it is left."""
    ink = (gray <= threshold)[bounds]
    return ink if ink.any() else None


def _flatten(gray):
    """Divide by a smooth estimate of the paper, so uneven lighting becomes white."""
    height, width = gray.shape
    img = Image.fromarray(gray)
    factor = max(1, min(height, width) // 64)
    small = img.reduce(factor) if factor > 1 else img
    # Strokes are darker than the paper and narrower than the window: the max erases them.
    paper = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(2))
    paper = np.asarray(paper.resize((width, height), Image.Resampling.BILINEAR), np.float64)
    return np.clip(np.rint(gray * (255.0 / np.maximum(paper, 1.0))), 0, 255).astype(np.uint8)


def _ink_levels(gray, threshold, mode):
    """Inverted levels with the background (above the threshold) set to exactly 0."""
    ink = gray <= threshold
    if not ink.any():
        return np.zeros_like(gray)
    if mode == "binary":
        return np.where(ink, 255, 0).astype(np.uint8)
    levels = np.arange(256, dtype=np.float64)
    if mode == "keep":
        lut = 255.0 - levels
    elif mode == "equalize":
        # Fraction of the ink at this level or lighter: the darkest ink -> 255, and
        # the same output for any increasing change of grey levels (gain, offset, gamma).
        counts = np.bincount(gray[ink], minlength=256).astype(np.float64)
        at_or_lighter = counts.sum() - np.cumsum(counts) + counts
        lut = 1.0 + 254.0 * at_or_lighter / counts.sum()
    else:
        darkest = np.percentile(gray[ink], 1, method="lower")
        # threshold -> 1, darkest ink -> 255, linear in between; affine-invariant
        lut = 1.0 + (threshold - levels) * (254.0 / max(threshold - darkest, 1))
    lut = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
    lut[threshold + 1 :] = 0
    return lut[gray]


def _normalize(gray, settings):
    """Grayscale scan (dark ink) to a :class:`_Canvas` (ink high)."""
    height, width = settings.canvas_size
    blank = np.zeros((height, width), dtype=np.uint8)
    if not settings.invert:
        blank += 255
    no_strokes = _NO_STROKES if settings.stroke_descriptors else None
    if settings.flatten_background:
        gray = _flatten(gray)
    blurred, threshold, contrast = _blurred_threshold(gray, settings.blur_radius)
    if threshold is None or contrast < settings.min_ink_contrast:
        return _Canvas(blank, True, _NO_INK, no_strokes)

    bounds = _ink_bounds(blurred, threshold)
    ink_size = tuple(float(s.stop - s.start) for s in bounds)
    strokes, mask = no_strokes, None
    if settings.stroke_masks:
        # One pass gives both: the descriptor finds the stroke's scale on the way.
        strokes, mask = _descriptor_and_stroke_mask(_ink_mask(gray, threshold, bounds))
        strokes = strokes if settings.stroke_descriptors else None
    elif settings.stroke_descriptors:
        strokes = stroke_descriptor(_ink_mask(gray, threshold, bounds))
    if settings.crop:
        gray = gray[bounds]
    if settings.remove_background:
        levels = _ink_levels(gray, threshold, settings.ink_contrast)
        if not levels.any():
            return _Canvas(blank, True, _NO_INK, no_strokes)
    else:
        levels = 255 - gray

    # Fit inside the canvas, keeping the aspect ratio; the padding is background (0).
    h, w = levels.shape
    scale = min(height / h, width / w)
    new_h = min(height, max(1, round(h * scale)))
    new_w = min(width, max(1, round(w * scale)))
    resized = Image.fromarray(levels).resize((new_w, new_h), Image.Resampling.LANCZOS)
    canvas = np.zeros((height, width), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = np.asarray(resized)
    if not settings.invert:
        canvas = 255 - canvas
    return _Canvas(canvas, False, ink_size, strokes, mask)
