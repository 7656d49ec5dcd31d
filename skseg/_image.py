"""Loading one signature image safely.

This module turns one *item* -- a file path, a PIL image or a numpy array -- into a
2-D ``uint8`` grayscale array, as scanned (light paper, dark ink). It owns every
question about decoding: image modes, transparency, EXIF orientation, size limits and
the error messages for items that cannot be used. It never imports torch.

Every error names the item (``label``, given by the caller, e.g. ``"pair 3, second
image"``, plus a short description such as ``path 'a.png'``), says what was wrong and
what is accepted, and chains the original exception (``raise ... from err``). The
original message is also copied into the new one, so nothing is lost when the error
crosses a process boundary (joblib workers do not keep ``__cause__``).
"""

import os

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageLoadError", "ImageTooLargeError", "describe_item", "load_grayscale"]

#: Default limit on width x height, well above a 600 dpi A4 scan (35 Mpx).
DEFAULT_MAX_PIXELS = 50_000_000

_ACCEPTED_ITEMS = (
    "a file path (str or os.PathLike), a PIL image, or a numpy array of shape (H, W) "
    "or (H, W, C) with C in {1, 2, 3, 4}, dtype uint8 (or integers in [0, 255]) "
    "or float in [0, 1]"
)
# Modes whose pixels carry an alpha channel; "transparency" in img.info covers the rest.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# EXIF orientations that exif_transpose turns by 90 degrees (rows become columns).
_AXES_SWAPPED = {5, 6, 7, 8}


class ImageLoadError(ValueError):
    """An item exists but cannot be used as an image (undecodable, truncated, empty)."""


class ImageTooLargeError(ImageLoadError):
    """An image has more pixels than ``max_pixels`` (a possible decompression bomb)."""


def describe_item(item):
    """Describe an item in a few words, for error messages.

    Parameters
    ----------
    item : object
        A path, PIL image, array or anything else.

    Returns
    -------
    description : str
        For example ``"path 'a.png'"`` or ``"array of shape (10, 20), dtype uint8"``.

    Examples
    --------
    >>> import numpy as np
    >>> describe_item("scans/a.png")
    "path 'scans/a.png'"
    >>> describe_item(np.zeros((10, 20), dtype=np.uint8))
    'array of shape (10, 20), dtype uint8'
    """
    if isinstance(item, (str, os.PathLike)):
        return f"path {os.fspath(item)!r}"
    if isinstance(item, Image.Image):
        return f"PIL image, mode {item.mode!r}, size {item.width}x{item.height}"
    if isinstance(item, np.ndarray):
        return f"array of shape {item.shape}, dtype {item.dtype}"
    return f"object of type {type(item).__name__}"


def _where(item, label):
    description = describe_item(item)
    return f"{label} ({description})" if label else description


def load_grayscale(item, *, max_pixels=DEFAULT_MAX_PIXELS, label=None, with_resolution=False):
    """Load one item into a 2-D ``uint8`` grayscale array (light paper, dark ink).

    Colour is reduced to luma (ITU-R 601-2, as PIL's ``convert("L")``), transparency
    is composited over white, the EXIF orientation of files and PIL images is applied,
    and 16-bit or 32-bit images are scaled to 8 bits.

    Parameters
    ----------
    item : str, os.PathLike, PIL.Image.Image or numpy.ndarray
        A file path, a PIL image, or an array of shape ``(H, W)`` or ``(H, W, C)`` with
        ``C`` in {1, 2, 3, 4} (gray, gray + alpha, RGB, RGBA). Arrays are ``uint8``,
        integers in [0, 255], or floats in [0, 1]; booleans are refused because their
        polarity is ambiguous.
    max_pixels : int or None, default=50_000_000
        Largest accepted ``width * height``. For files it is checked on the header,
        before the pixels are decoded, so a decompression bomb costs nothing. ``None``
        disables this check. Pillow's own guard still applies to files: above
        ``PIL.Image.MAX_IMAGE_PIXELS`` it warns (``DecompressionBombWarning``), above
        twice that it refuses the file, which raises ``ImageTooLargeError`` here. This
        function changes no global warning filter, so it is safe in threads.
    label : str, optional
        Where the item comes from, e.g. ``"pair 3, second image"``; it starts every
        error message.
    with_resolution : bool, default=False
        Also return the scan resolution the file or PIL image records (Pillow's
        ``info["dpi"]``, read from PNG, JPEG, TIFF and BMP headers).

    Returns
    -------
    gray : ndarray of shape (H, W), dtype uint8
        A new array that the caller may modify.
    resolution : tuple of (float, float) or None
        Only with ``with_resolution``: pixels per inch down the rows and along the
        columns of ``gray`` (EXIF orientation applied, so a quarter turn swaps them);
        None for arrays and for images that record no positive resolution.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        The path does not lead to a readable file.
    ImageLoadError
        A ``ValueError``: the file is not an image Pillow can decode, is truncated, or
        the image or array is empty.
    ImageTooLargeError
        A subclass of ``ImageLoadError``: more than ``max_pixels`` pixels.
    TypeError
        The item is of an unsupported type, or an array of an unsupported dtype.
    ValueError
        An array of the wrong shape, with NaN or infinite values, or with values out
        of range.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.full((4, 6, 3), 255, dtype=np.uint8)
    >>> rgb[1:3, 2:4] = (0, 0, 255)  # blue ink
    >>> load_grayscale(rgb)[1]
    array([255, 255,  29,  29, 255, 255], dtype=uint8)
    >>> load_grayscale(np.zeros((2, 2, 5)), label="image 7")
    Traceback (most recent call last):
        ...
    ValueError: image 7 (array of shape (2, 2, 5), dtype float64): expected ...
    """
    if isinstance(item, (str, os.PathLike)):
        gray, resolution = _load_path(item, max_pixels, label, with_resolution)
    elif isinstance(item, Image.Image):
        gray = _decode(item, item, max_pixels, label)
        resolution = _resolution(item) if with_resolution else None
    elif isinstance(item, np.ndarray):
        gray, resolution = _load_array(item, max_pixels, label), None
    else:
        raise TypeError(f"{_where(item, label)}: unsupported item; expected {_ACCEPTED_ITEMS}.")
    return (gray, resolution) if with_resolution else gray


def _resolution(img):
    """``(rows, columns)`` pixels per inch that ``img`` records, after EXIF orientation;
    None when it records none, or nothing usable (zero, negative, not numbers)."""
    try:
        horizontal, vertical = (float(v) for v in img.info["dpi"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (np.isfinite([horizontal, vertical]).all() and horizontal > 0 and vertical > 0):
        return None
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # unreadable EXIF: exif_transpose does not turn the image either
        orientation = None
    if orientation in _AXES_SWAPPED:
        return horizontal, vertical
    return vertical, horizontal


def _check_size(width, height, max_pixels, where):
    if width == 0 or height == 0:
        raise ImageLoadError(f"{where}: the image is empty ({width}x{height} pixels).")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{where}: {width}x{height} = {width * height} pixels is more than "
            f"max_pixels={max_pixels} (a possible decompression bomb); raise max_pixels "
            "if the image is trusted."
        )


def _load_path(path, max_pixels, label, with_resolution=False):
    where = _where(path, label)
    filename = os.fspath(path)
    if not isinstance(filename, str):
        raise TypeError(f"{where}: paths must be str or os.PathLike giving str, not bytes.")
    # Checked before opening so the messages are clear on every platform.
    if os.path.isdir(filename):
        raise IsADirectoryError(f"{where}: is a directory, expected an image file.")
    if not os.path.exists(filename):
        raise FileNotFoundError(f"{where}: no such file.")
    try:
        img = Image.open(filename)  # lazy: reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own guard (MAX_IMAGE_PIXELS) refused it; the warning arrives here
        # only when warnings are turned into errors.
        raise ImageTooLargeError(
            f"{where}: Pillow refused to open it as a possible decompression bomb ({err})."
        ) from err
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{where}: not an image file that Pillow can read.") from err
    except FileNotFoundError as err:  # removed since the check above
        raise FileNotFoundError(f"{where}: no such file ({err}).") from err
    except PermissionError as err:
        raise PermissionError(f"{where}: permission denied ({err}).") from err
    except MemoryError:
        raise
    except Exception as err:
        raise ImageLoadError(
            f"{where}: cannot open the file ({type(err).__name__}: {err})."
        ) from err
    with img:
        return (_decode(img, path, max_pixels, label),
                _resolution(img) if with_resolution else None)


def _decode(img, item, max_pixels, label):
    """Decode a PIL image (lazy or not) into grayscale uint8, naming ``item`` on errors."""
    where = _where(item, label)
    _check_size(img.width, img.height, max_pixels, where)
    try:
        img.load()  # Image.open is lazy: force the full decode here, inside the try
        img = ImageOps.exif_transpose(img)
        return _to_gray(img)
    except MemoryError:
        raise
    except Exception as err:  # truncated files (OSError), broken chunks (SyntaxError)...
        raise ImageLoadError(
            f"{where}: cannot decode the image, the file may be truncated or corrupt "
            f"({type(err).__name__}: {err})."
        ) from err


def _to_gray(img):
    mode = img.mode
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(white, rgba).convert("L"))
    if mode.startswith("I;16"):
        return _rescale(np.asarray(img, dtype=np.float64) / 257.0)
    if mode == "I":
        values = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
        # 32-bit containers hold 16-bit data (e.g. old 16-bit PNG readers) or 8-bit data.
        return _rescale(values / 257.0 if values.max() > 255 else values)
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("the image has NaN or infinite pixels")
        return _rescale(values * 255.0 if values.max() <= 1.0 else values)
    if mode == "L":
        return np.array(img)
    try:
        return np.array(img.convert("L"))
    except ValueError:  # modes without a direct conversion (e.g. some CMYK/LAB variants)
        return np.array(img.convert("RGB").convert("L"))


def _rescale(values):
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _load_array(array, max_pixels, label):
    where = _where(array, label)
    shape_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 2, 3, 4))
    if not shape_ok:
        raise ValueError(
            f"{where}: expected an image array of shape (H, W) or (H, W, C) with "
            "C in {1, 2, 3, 4}."
        )
    _check_size(array.shape[1], array.shape[0], max_pixels, where)
    kind = array.dtype.kind
    if kind == "b":
        raise TypeError(
            f"{where}: boolean arrays are ambiguous (is True ink or paper?); pass uint8 "
            "with 0 = black ink and 255 = white paper."
        )
    if kind in "iu":
        if array.dtype != np.uint8:
            low, high = array.min(), array.max()
            if low < 0 or high > 255:
                raise ValueError(
                    f"{where}: integer pixels must lie in [0, 255], found values in "
                    f"[{low}, {high}]; scale them (e.g. 16-bit data: // 257)."
                )
        pixels = array.astype(np.uint8)
    elif kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"{where}: the array contains NaN or infinite values.")
        low, high = array.min(), array.max()
        if low < 0 or high > 1:
            raise ValueError(
                f"{where}: float pixels must lie in [0, 1], found values in "
                f"[{low:g}, {high:g}]; for 0-255 data use dtype uint8."
            )
        pixels = _rescale(array.astype(np.float64) * 255.0)
    else:
        raise TypeError(
            f"{where}: unsupported dtype {array.dtype}; expected uint8, integers in "
            "[0, 255] or floats in [0, 1]."
        )
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels)
    # Pillow infers LA, RGB or RGBA from the number of channels.
    return _to_gray(Image.fromarray(np.ascontiguousarray(pixels)))
