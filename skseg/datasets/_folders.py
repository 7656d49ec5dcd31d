"""Read signature image collections laid out in the common folder structures."""

import os
import re
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

#: Image file extensions that are read, compared without regard to case.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# How deep below ``path`` files are looked for: BHSig260 unpacked as
# ``BHSig260/Hindi/<writer>/<file>`` is the deepest supported layout.
_MAX_DEPTH = 4

_EXT = r"\.(?:png|jpe?g|tiff?|bmp)"

# One regular expression per layout, matched against the path of each image
# relative to ``path`` (always with "/" separators).  Named groups: ``writer``,
# and ``forged`` (set for a forgery) or ``kind`` (for the generic layout).
_PATTERNS = {
    # CEDAR: full_org/original_<w>_<n>.png and full_forg/forgeries_<w>_<n>.png,
    # optionally inside one folder (the Kaggle copy has them under signatures/).
    "cedar": re.compile(
        r"^(?:[^/]+/)?(?:full_org/original|full_forg/(?P<forged>forgeries))"
        r"_(?P<writer>[^/_]+)_\d+" + _EXT + "$",
        re.IGNORECASE,
    ),
    # Kaggle / SigComp 2011: <w>/ genuine, <w>_forg/ forgeries of writer <w>,
    # optionally under train/ (the Kaggle copy's test/ repeats train writers).
    "kaggle": re.compile(
        r"^(?:train/)?(?P<writer>[^/]+?)(?P<forged>_forg)?/[^/]+" + _EXT + "$",
        re.IGNORECASE,
    ),
    # BHSig260: H-S-<w>-G-<n>.tif / B-S-<w>-F-<n>.tif in any folders; the
    # script letter stays in the writer id so Hindi and Bengali never collide.
    "bhsig": re.compile(
        r"^(?:[^/]+/)*(?P<writer>[BH]-S-\d+)-(?:G|(?P<forged>F))-\d+" + _EXT + "$",
        re.IGNORECASE,
    ),
    # Generic: <w>/genuine/* and <w>/forged/*.
    "generic": re.compile(
        r"^(?P<writer>[^/]+)/(?P<kind>genuine|forged)/[^/]+" + _EXT + "$",
        re.IGNORECASE,
    ),
}

#: Names accepted by ``load_signatures(layout=...)``, besides ``"auto"``.
LAYOUTS = tuple(_PATTERNS)


def _natural_key(text):
    """Sort key that orders ``"2"`` before ``"10"`` (digits compared as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", text)]


def _list_images(root):
    """Relative ``/``-separated paths of the visible image files under ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        depth = 0 if rel_dir == "." else rel_dir.count(os.sep) + 1
        # Hidden folders (.git, .ipynb_checkpoints) are skipped, and so is
        # everything too deep to belong to a supported layout.
        dirnames[:] = [] if depth >= _MAX_DEPTH - 1 else sorted(
            d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            found.append(rel.replace(os.sep, "/"))
    return found


def _parse(layout, files):
    """``{relative path: (writer, genuine)}`` for the files that fit ``layout``."""
    pattern = _PATTERNS[layout]
    parsed = {}
    for rel in files:
        match = pattern.match(rel)
        if match is None:
            continue
        groups = match.groupdict()
        if layout == "generic":
            genuine = groups["kind"].lower() == "genuine"
        else:
            genuine = groups["forged"] is None
        parsed[rel] = (groups["writer"], genuine)
    if layout == "kaggle":
        # Any "<folder>/<image>" fits the pattern, so the layout is only
        # recognised when some writer has both <w>/ and <w>_forg/ folders.
        with_genuine = {w for w, g in parsed.values() if g}
        with_forged = {w for w, g in parsed.values() if not g}
        if not with_genuine & with_forged:
            return {}
    return parsed


@validate_params({"path": [str, os.PathLike], "layout": [str]},
                 prefer_skip_nested_validation=True)
def load_signatures(path, layout="auto"):
    """Find the signature images in a folder and label them by writer.

    Reads only the folder structure and file names; no image is opened.

    Parameters
    ----------
    path : str or path-like
        Folder that holds the data set.
    layout : {"auto", "cedar", "kaggle", "bhsig", "generic"}, default="auto"
        How the folder is organised (file extensions ``.png``, ``.jpg``,
        ``.jpeg``, ``.tif``, ``.tiff`` and ``.bmp`` in any case; hidden files
        and other files are ignored):

        - ``"cedar"``: ``full_org/original_<writer>_<n>.png`` and
          ``full_forg/forgeries_<writer>_<n>.png`` (CEDAR), possibly inside one
          subfolder such as ``signatures/``.
        - ``"kaggle"``: ``<writer>/`` holds genuine signatures and
          ``<writer>_forg/`` forgeries of that writer (Kaggle and ICDAR SigComp
          2011 copies), possibly under ``train/``. Only ``train/`` is read
          there: the Kaggle ``test/`` folder repeats writers of ``train/``.
          The writer is the folder name, whatever the file names say.
        - ``"bhsig"``: ``H-S-<w>-G-<n>.tif`` (genuine) and ``H-S-<w>-F-<n>.tif``
          (forged), ``B-S-...`` for Bengali, in any folders (BHSig260). Writer
          ids keep the script prefix (``"H-S-1"``, ``"B-S-1"``), so the two
          scripts never share an id.
        - ``"generic"``: ``<writer>/genuine/`` and ``<writer>/forged/``.

        ``"auto"`` uses the layout that accounts for the most images.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        paths : ndarray of str, shape (n_images,)
            Image paths (``path`` joined with the file's relative path),
            sorted by writer (numbers in natural order), genuine before
            forged, then by file name.
        writer : ndarray of str, shape (n_images,)
            Writer id of each image: whose signature it is (or imitates).
        genuine : ndarray of bool, shape (n_images,)
            True for a genuine signature, False for a forgery.
        layout : str
            The layout that was used.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is not a folder.
    ValueError
        If the folder fits none of the layouts (or not the one requested).

    Warns
    -----
    UserWarning
        If some image files under ``path`` do not fit the layout and are
        left out (for example the Kaggle ``test/`` folder).

    See Also
    --------
    make_pairs : Turn the result into labelled pairs.
    make_synthetic_signatures : Generated data with the same fields.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skseg.datasets import load_signatures
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name)
    >>> for folder in ["001", "001_forg", "002", "002_forg"]:
    ...     (root / folder).mkdir()
    ...     for n in (1, 2):
    ...         (root / folder / f"{n:02d}.png").touch()
    >>> data = load_signatures(root)
    >>> data.layout
    'kaggle'
    >>> data.writer
    array(['001', '001', '001', '001', '002', '002', '002', '002'], dtype='<U3')
    >>> data.genuine
    array([ True,  True, False, False,  True,  True, False, False])
    >>> [Path(p).name for p in data.paths[:3]]
    ['01.png', '02.png', '01.png']
    >>> tmp.cleanup()
    """
    root = Path(path)
    if layout != "auto" and layout not in LAYOUTS:
        raise ValueError(
            f"Unknown layout {layout!r} for {str(root)!r}; accepted layouts are "
            f"'auto', {', '.join(repr(name) for name in LAYOUTS)}."
        )
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"Signature folder {str(root)!r} {what}.")

    files = _list_images(root)
    if layout == "auto":
        candidates = {name: _parse(name, files) for name in LAYOUTS}
        # max keeps the first of equal counts, so ties follow LAYOUTS' order.
        layout = max(LAYOUTS, key=lambda name: len(candidates[name]))
        parsed = candidates[layout]
    else:
        parsed = _parse(layout, files)

    if not parsed:
        expected = ("one of the layouts " + ", ".join(repr(n) for n in LAYOUTS)
                    if layout == "auto" or not files else f"the {layout!r} layout")
        raise ValueError(
            f"No signature images found in {str(root)!r} that fit {expected} "
            f"({len(files)} image files seen). Accepted layouts: "
            "'cedar' (full_org/original_<w>_<n>.png, full_forg/forgeries_<w>_<n>.png), "
            "'kaggle' ([train/]<w>/ genuine and <w>_forg/ forged), "
            "'bhsig' (H-S-<w>-G-<n>.tif, B-S-<w>-F-<n>.tif), "
            "'generic' (<w>/genuine/, <w>/forged/)."
        )

    left_out = [rel for rel in files if rel not in parsed]
    if left_out:
        warnings.warn(
            f"{len(left_out)} image files in {str(root)!r} do not fit the "
            f"{layout!r} layout and were left out, e.g. {left_out[:3]}.",
            UserWarning,
            stacklevel=2,
        )

    order = sorted(parsed, key=lambda rel: (
        _natural_key(parsed[rel][0]), not parsed[rel][1], _natural_key(rel)))
    return Bunch(
        paths=np.array([str(root / rel) for rel in order], dtype=str),
        writer=np.array([parsed[rel][0] for rel in order], dtype=str),
        genuine=np.array([parsed[rel][1] for rel in order], dtype=bool),
        layout=layout,
    )
