"""Labelled (reference, questioned) pairs: made from single images, or read from a CSV."""

import csv
import os
import re
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions, validate_params
from sklearn.utils.random import sample_without_replacement

#: The kinds of pair returned by ``make_pairs(..., return_kind=True)``.
PAIR_KINDS = ("genuine", "skilled", "random")


def _items_of(data):
    """The images of ``data`` as a 1-D object array, checked against its labels."""
    if not hasattr(data, "get"):
        raise TypeError(
            "make_pairs expects the Bunch of load_signatures or "
            f"make_synthetic_signatures; got {type(data).__name__}."
        )
    missing = [key for key in ("writer", "genuine") if key not in data]
    paths = data.get("paths")
    images = data.get("images")
    if paths is None and images is None:
        missing.append("paths or images")
    if missing:
        raise ValueError(
            "make_pairs expects the Bunch of load_signatures or "
            "make_synthetic_signatures; `data` has no " + ", ".join(missing) + "."
        )
    source = "paths" if paths is not None else "images"
    # Paths become plain str (not np.str_ or Path); images stay as they are.
    values = [str(os.fspath(p)) for p in paths] if paths is not None else images
    # Filled one by one so that numpy never stacks equal-sized images into a
    # 3-D array, and each item stays the same object (callers dedupe by id).
    items = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        items[i] = value
    writer = np.asarray(data["writer"]).astype(str)
    genuine = np.asarray(data["genuine"])
    if genuine.dtype != bool:
        if not np.isin(genuine, [0, 1]).all():
            raise ValueError("data.genuine must hold booleans (True = genuine).")
        genuine = genuine.astype(bool)
    if not len(items) == len(writer) == len(genuine):
        raise ValueError(
            f"data.{source}, data.writer and data.genuine must have the same length; "
            f"got {len(items)}, {len(writer)} and {len(genuine)}."
        )
    return items, writer, genuine


def _sample(n_population, n_samples, rng):
    """Sorted sample of ``range(n_population)``; all of it without using ``rng``."""
    if n_samples >= n_population:
        return np.arange(n_population)
    seed = rng.randint(np.iinfo(np.int32).max)
    return np.sort(sample_without_replacement(n_population, n_samples, random_state=seed))


def _cross(left, right, n_samples, rng):
    """``n_samples`` distinct (left, right) index pairs drawn from ``left x right``."""
    chosen = _sample(len(left) * len(right), n_samples, rng)
    return np.column_stack([left[chosen // len(right)], right[chosen % len(right)]])


@validate_params(
    {
        "data": "no_validation",
        "n_forgeries_per_genuine_pair": [Interval(Real, 0, None, closed="left")],
        "random_forgeries": [Interval(Real, 0, None, closed="left")],
        "max_pairs_per_writer": [Interval(Integral, 1, None, closed="left"), None],
        "return_kind": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_pairs(
    data,
    *,
    n_forgeries_per_genuine_pair=1.0,
    random_forgeries=0.0,
    max_pairs_per_writer=None,
    return_kind=False,
    random_state=None,
):
    """Make labelled signature pairs, writer by writer (the SigNet protocol).

    For each writer: every pair of two of its genuine signatures (label 1),
    then pairs of one of its genuine signatures and one skilled forgery of it
    (label 0), drawn at random, by default as many as there are genuine pairs.
    Optionally, random forgeries (label 0): one of its genuine signatures
    against a genuine signature of another writer.

    Parameters
    ----------
    data : :class:`~sklearn.utils.Bunch`
        Output of :func:`load_signatures` or :func:`make_synthetic_signatures`:
        ``writer``, ``genuine``, and ``paths`` (used if not None) or ``images``.
    n_forgeries_per_genuine_pair : float, default=1.0
        Skilled-forgery pairs per genuine pair of the same writer; 1.0 balances
        the two classes. Limited by the available genuine x forgery
        combinations.
    random_forgeries : float, default=0.0
        Random-forgery pairs per genuine pair of the same writer.
    max_pairs_per_writer : int, default=None
        If the pairs of a writer exceed this number, each kind is subsampled
        by the same factor. None keeps all.
    return_kind : bool, default=False
        Also return the kind of each pair, to report skilled and random
        forgeries separately.
    random_state : int, RandomState instance or None, default=None
        Draws the forgery pairs and subsamples. Pass an int for the same pairs
        on every call.

    Returns
    -------
    pairs : ndarray of object, shape (n_pairs, 2)
        Column 0 is the reference (a genuine signature of the writer), column 1
        the questioned signature. Items are the entries of ``data.paths``, or
        the very objects of ``data.images`` (a repeated image is the same
        object, so it can be deduplicated by ``id``).
    y : ndarray of int, shape (n_pairs,)
        1 for a genuine pair, 0 for a forged pair.
    groups : ndarray of str, shape (n_pairs,)
        Writer of the reference, for :class:`~sklearn.model_selection.GroupKFold`.
    kind : ndarray of str, shape (n_pairs,)
        Only if ``return_kind``: ``"genuine"``, ``"skilled"`` or ``"random"``.

    Notes
    -----
    Pairs are ordered by writer (as first seen in ``data``), then genuine,
    skilled and random pairs, then by image index. Genuine pairs are the
    unordered combinations ``i < j`` in ``data`` order. Writers with fewer than
    two genuine signatures contribute no pairs.

    The questioned image of a random forgery belongs to another writer, who
    may fall in a different fold of a ``GroupKFold`` split. For a strictly
    writer-independent evaluation, make random forgeries separately from the
    training and from the test writers' data.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.datasets import make_pairs, make_synthetic_signatures
    >>> data = make_synthetic_signatures(n_writers=3, n_genuine=4, n_forgeries=4,
    ...                                  random_state=0)
    >>> pairs, y, groups = make_pairs(data, random_state=0)
    >>> print(pairs.shape, y.sum(), (y == 0).sum())
    (36, 2) 18 18
    >>> pairs[0, 0].dtype, pairs[0, 0].ndim
    (dtype('uint8'), 2)
    >>> pairs, y, groups, kind = make_pairs(
    ...     data, random_forgeries=0.5, return_kind=True, random_state=0)
    >>> np.unique(kind, return_counts=True)
    (array(['genuine', 'random', 'skilled'], dtype='<U7'), array([18,  9, 18]))
    """
    items, writer, genuine = _items_of(data)
    rng = check_random_state(random_state)
    all_genuine = np.flatnonzero(genuine)

    index_pairs, kinds, groups = [], [], []
    for w in dict.fromkeys(writer):  # writers in order of first appearance
        own = writer == w
        real = np.flatnonzero(own & genuine)
        forged = np.flatnonzero(own & ~genuine)
        others = all_genuine[writer[all_genuine] != w]

        first, second = np.triu_indices(len(real), k=1)
        n_genuine = len(first)
        counts = np.array([
            n_genuine,
            min(int(n_forgeries_per_genuine_pair * n_genuine + 0.5), len(real) * len(forged)),
            min(int(random_forgeries * n_genuine + 0.5), len(real) * len(others)),
        ])
        if max_pairs_per_writer is not None and counts.sum() > max_pairs_per_writer:
            counts = (counts * (max_pairs_per_writer / counts.sum())).astype(int)

        chosen = _sample(n_genuine, counts[0], rng)
        per_kind = [
            np.column_stack([real[first[chosen]], real[second[chosen]]]),
            _cross(real, forged, counts[1], rng),
            _cross(real, others, counts[2], rng),
        ]
        for kind, block in zip(PAIR_KINDS, per_kind):
            index_pairs.append(block.reshape(-1, 2))
            kinds.extend([kind] * len(block))
            groups.extend([w] * len(block))

    index_pairs = np.concatenate(index_pairs) if index_pairs else np.empty((0, 2), int)
    if len(index_pairs) == 0:
        raise ValueError(
            "make_pairs found no pairs: no writer has two genuine signatures."
        )
    pairs = np.empty((len(index_pairs), 2), dtype=object)
    pairs[:, 0] = items[index_pairs[:, 0]]
    pairs[:, 1] = items[index_pairs[:, 1]]
    kinds = np.array(kinds, dtype=str)
    y = (kinds == "genuine").astype(int)
    groups = np.array(groups, dtype=str)
    if return_kind:
        return pairs, y, groups, kinds
    return pairs, y, groups


def _folder_writer(rel_path):
    """Writer id from a path such as ``"068_forg/01_0113068.PNG"``: the folder."""
    parts = re.split(r"[/\\]", rel_path)
    if len(parts) < 2 or not parts[-2]:
        return None
    return re.sub(r"_forg$", "", parts[-2], flags=re.IGNORECASE)


def _parse_label(text):
    """0 or 1 from ``"0"``, ``"1"``, ``"1.0"``...; None for anything else."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value in (0.0, 1.0) else None


@validate_params(
    {
        "path": [str, os.PathLike],
        "forged_label": [Interval(Integral, 0, 1, closed="both")],
        "root": [str, os.PathLike, None],
        "header": [StrOptions({"infer"}), Options(Integral, {0}), None],
        "groups": [StrOptions({"folder"}), callable, None],
        "check_files": ["boolean"],
        "delimiter": [str],
    },
    prefer_skip_nested_validation=True,
)
def load_pairs_csv(
    path,
    *,
    forged_label,
    root=None,
    header="infer",
    groups="folder",
    check_files=True,
    delimiter=",",
):
    """Read a list of signature pairs from a CSV file.

    Each row is ``image_1, image_2, label``: a reference image, a questioned
    image, and a 0/1 label. This reads for example the ``train_data.csv`` of
    the Kaggle copy of SigComp 2011, where label 1 means that the second
    image is a forgery (pass ``forged_label=1``). Labels are converted to this
    package's convention: 1 = genuine pair.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    forged_label : {0, 1}
        The label value in the file that marks a forged pair; the other value
        marks a genuine pair. Required, because pair lists disagree: the
        Kaggle ``train_data.csv`` uses 1 for forged (``forged_label=1``),
        SigNet-style lists use 1 for genuine (``forged_label=0``).
    root : str or path-like, default=None
        Folder that the image paths of the file are relative to (absolute
        paths are kept). None tries the CSV's own folder, then its ``train/``
        subfolder (the Kaggle layout), and uses the first under which every
        image exists (the CSV's folder if neither has them all).
    header : "infer", 0 or None, default="infer"
        0: the first row is a header and is skipped. None: there is no header.
        "infer": the first row is a header if its label is not a number.
    groups : "folder", callable or None, default="folder"
        How to get the writer of each pair. "folder": the folder of the
        reference image, without a ``_forg`` suffix (``"068/09_068.png"`` ->
        ``"068"``). A callable receives the reference path as written in the
        file and returns the writer id. None: no groups are returned.
    check_files : bool, default=True
        Check that every image exists, and raise an error listing the first
        missing ones with their line numbers.
    delimiter : str, default=","
        Column separator.

    Returns
    -------
    pairs : ndarray of object, shape (n_pairs, 2)
        Image paths (str) joined with ``root``.
    y : ndarray of int, shape (n_pairs,)
        1 for a genuine pair, 0 for a forged pair.
    groups : ndarray of str of shape (n_pairs,), or None
        Writer of each pair; None if ``groups=None``.

    Raises
    ------
    FileNotFoundError
        If the CSV file or (with ``check_files``) an image does not exist.
    ValueError
        If a row does not have 3 columns, has a label other than 0 or 1, or
        its writer cannot be derived; the message gives the line number.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skseg.datasets import load_pairs_csv
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name)
    >>> for name in ["001/a.png", "001/b.png", "001_forg/c.png"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     (root / name).touch()
    >>> _ = (root / "pairs.csv").write_text("001/a.png,001/b.png,0\\n"
    ...                                     "001/a.png,001_forg/c.png,1\\n")
    >>> pairs, y, groups = load_pairs_csv(root / "pairs.csv", forged_label=1)
    >>> y, groups
    (array([1, 0]), array(['001', '001'], dtype='<U3'))
    >>> Path(pairs[1, 1]).relative_to(root).as_posix()
    '001_forg/c.png'
    >>> tmp.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Pair list {str(path)!r} does not exist.")

    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        rows = [(reader.line_num, row) for row in reader if any(f.strip() for f in row)]

    if rows and (header == 0 or (header == "infer" and len(rows[0][1]) == 3
                                 and _parse_label(rows[0][1][2]) is None)):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"Pair list {str(path)!r} has no pairs.")

    refs, questioned, labels, lines = [], [], [], []
    for line, row in rows:
        if len(row) != 3:
            raise ValueError(
                f"{str(path)!r}, line {line}: expected 3 columns "
                f"(image_1, image_2, label), got {len(row)}: {row!r}."
            )
        label = _parse_label(row[2].strip())
        if label is None:
            raise ValueError(
                f"{str(path)!r}, line {line}: label {row[2]!r} is not 0 or 1."
            )
        refs.append(row[0].strip())
        questioned.append(row[1].strip())
        labels.append(label)
        lines.append(line)

    if root is None:
        candidates = [path.parent, path.parent / "train"]
        probe = refs[:1] + questioned[:1] if not check_files else refs + questioned
        unique = list(dict.fromkeys(probe))
        found = [sum((base / rel).exists() for rel in unique) for base in candidates]
        root = candidates[1] if found[1] > found[0] else candidates[0]
    root = Path(root)

    pairs = np.empty((len(refs), 2), dtype=object)
    pairs[:, 0] = [str(root / rel) for rel in refs]
    pairs[:, 1] = [str(root / rel) for rel in questioned]

    if check_files:
        exists = {p: os.path.exists(p) for p in np.unique(pairs)}
        missing = [(lines[i], p) for i, row in enumerate(pairs) for p in row if not exists[p]]
        if missing:
            shown = "; ".join(f"line {line}: {p}" for line, p in missing[:5])
            raise FileNotFoundError(
                f"{len(missing)} image paths in {str(path)!r} do not exist under "
                f"root {str(root)!r} (pass root= to change it). First: {shown}."
            )

    y = (np.array(labels) != forged_label).astype(int)

    if groups is None:
        return pairs, y, None
    writers = []
    for line, ref in zip(lines, refs):
        w = _folder_writer(ref) if groups == "folder" else groups(ref)
        if w is None:
            raise ValueError(
                f"{str(path)!r}, line {line}: cannot tell the writer of {ref!r} "
                "(no folder in the path); pass groups=None or a callable."
            )
        writers.append(str(w))
    return pairs, y, np.array(writers, dtype=str)
