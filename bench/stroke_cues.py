"""What the ink's shape and texture tell alone, writer-independently: the stroke
descriptors of :mod:`skseg.strokes` without the network.

:class:`~skseg.SignaturePreprocessor` describes each scan's ink mask at the
scan's own resolution (:func:`skseg.strokes.stroke_descriptor`), and
:class:`~skseg.SiameseVerifier` learns, with gradient boosting on ``|d1 - d2|``
of the training pairs, how much to subtract its log-odds from the network's
distance (``stroke_weight``; ``skseg benchmark --stroke-weight 0`` measures the
network without it). This script measures the descriptors *alone*, on each
writer fold of ``skseg benchmark`` (same ``GroupKFold`` split): the same
classifier learns from the training writers' pairs (genuine-genuine,
genuine-skilled forgery and one random forgery per genuine pair) and scores
the test writers' pairs, as the benchmark forms them. Each fold also reports
a validation-writer skilled EER (the classifier trained again without a fifth
of the training writers, scored on theirs): the figure to choose a change by,
as the test writers' must not be.

``--tree-params`` changes the classifier's settings (any of
scikit-learn's ``HistGradientBoostingClassifier``; the package's are
``skseg._boosting.TREE_SETTINGS``).

Only the ink mask is used, never its grey levels, where CEDAR's two scanning
sessions differ (see ``background_shortcut.py``); two options check what the
mask's edge could still carry of the scan: ``--flatten-background`` (the
paper's grey level) and ``--soften`` (the scan's sharpness).

``--run-lengths`` appends a candidate part to each descriptor
(:func:`run_length_histograms`, 64 numbers): how long the runs of ink, and of
the paper between two strokes, are along rows, columns and both diagonals, at
the stroke's scale. Alone it lowered the skilled EER on both data sets; in
the verifier (at commit 1424118, where it was part of the descriptor) it did
not lower the validation writers' EER, so the package leaves it out.

Usage::

    python bench/stroke_cues.py ../shared/data/cedar --out strokes.json
    python bench/stroke_cues.py ../shared/data/cedar --soften 1.5
    python bench/stroke_cues.py ../shared/data/cedar --run-lengths
    python bench/stroke_cues.py ../shared/data/cedar --tree-params '{"max_features": 0.3}'
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from PIL import Image, ImageFilter
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold

from skseg._boosting import fit_boosted_trees
from skseg._image import load_grayscale
from skseg.datasets import load_signatures
from skseg.datasets._pairs import _items_of
from skseg.evaluation import _ALL_PAIRS, _fold_metrics, _pairs_of
from skseg._pairs import descriptor_differences
from skseg.preprocessing import _blurred_threshold, _flatten, _ink_bounds, _ink_mask
from skseg.strokes import _descriptor_and_stroke_mask, stroke_descriptor

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is no package
# One reading of a JSON option for every bench script.
from ablations import json_params  # noqa: E402

#: Run-length classes of :func:`run_length_histograms`: 1, 2-3, 4-7, ... and 128
#: pixels or more (log2 of the length); 8 histograms of them.
RUN_LENGTH_BINS = 8
N_RUN_LENGTHS = 8 * RUN_LENGTH_BINS


def ink_mask(item, blur_radius=1.0, flatten_background=False, soften=0.0):
    """The ink of ``item`` as :class:`~skseg.SignaturePreprocessor` finds it, cropped
    to its box (bool), or None for an image without ink.

    Two checks of what the descriptors rest on: ``flatten_background`` divides the
    scan by its paper first, as the preprocessor's option of that name does, so that
    the paper's grey level cannot move the ink's edge; ``soften`` blurs the scan
    first (Gaussian of that radius in pixels), so that scans of different sharpness
    give edges alike.
    """
    gray = load_grayscale(item)
    if flatten_background:
        gray = _flatten(gray)
    if soften > 0:
        gray = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(soften)))
    blurred, threshold, _ = _blurred_threshold(gray, blur_radius)
    if threshold is None:
        return None
    return _ink_mask(gray, threshold, _ink_bounds(blurred, threshold))


def descriptors(items, n_jobs=None, run_lengths=False, **mask_options):
    """One :func:`~skseg.strokes.stroke_descriptor` row per item (paths, PIL images
    or arrays), followed with ``run_lengths`` by its :func:`run_length_histograms`
    (NaN for an image without ink); ``mask_options`` go to :func:`ink_mask`."""
    rows = Parallel(n_jobs=n_jobs)(delayed(_describe)(item, mask_options, run_lengths)
                                   for item in items)
    return np.array(rows, dtype=np.float64).reshape(len(items), -1)


def _describe(item, mask_options, run_lengths):
    ink = ink_mask(item, **mask_options)
    if not run_lengths:
        return stroke_descriptor(ink)
    row, at_stroke_scale = _descriptor_and_stroke_mask(ink)
    runs = (np.full(N_RUN_LENGTHS, np.nan) if at_stroke_scale is None
            else run_length_histograms(at_stroke_scale))
    return np.concatenate([row, runs])


def run_length_histograms(ink):
    """Histograms of the lengths of the runs of ink, and of the paper between two
    runs of ink, along the rows, columns, anti-diagonals and diagonals of the mask
    ``ink``: 8 histograms of :data:`RUN_LENGTH_BINS` length classes (log2), each
    the fraction of its runs' pixels in each class (all 0 where there is no run)."""
    runs = [_runs(lines) for lines in (ink, ink.T, _skewed(ink).T, _skewed(ink[:, ::-1]).T)]
    histograms = []
    for of_ink in (True, False):
        for starts, ends, line in runs:
            if of_ink:
                lengths = ends - starts
            else:  # the gaps between successive runs of ink on one line
                lengths = (starts[1:] - ends[:-1])[line[1:] == line[:-1]]
            classes = np.minimum(np.log2(np.maximum(lengths, 1)).astype(int),
                                 RUN_LENGTH_BINS - 1)
            histogram = np.bincount(classes, lengths, RUN_LENGTH_BINS)
            histograms.append(histogram / max(histogram.sum(), 1.0))
    return np.concatenate(histograms)


def _skewed(ink):
    """The mask with row ``r`` shifted right by ``r``: its columns are the mask's
    anti-diagonals (the cells a step down and to the left of each other)."""
    height, width = ink.shape
    out = np.zeros((height, width + height - 1), dtype=bool)
    rows = np.arange(height)[:, None]
    out[rows, rows + np.arange(width)] = ink
    return out


def _runs(lines):
    """Start, end (exclusive) and line of each run of True in the rows of ``lines``,
    in order, positions counted along the rows laid end to end with one False
    between them (so that no run crosses from one row to the next)."""
    padded = np.pad(lines, ((0, 0), (0, 1))).ravel()
    edges = np.diff(padded.astype(np.int8), prepend=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return starts, ends, starts // (lines.shape[1] + 1)


def pair_features(descriptor_rows, pairs):
    """``|d1 - d2|`` of each pair's two descriptors (NaN where an image has no ink)."""
    return descriptor_differences(descriptor_rows, np.asarray(pairs, dtype=np.int64))


def _eers(metrics):
    return {name: metrics[name] for name in
            ("eer_skilled", "eer_random", "eer_skilled_writer", "eer_random_writer")}


def alone(descriptor_rows, writer, genuine, n_splits=5, random_state=0, tree_params=None):
    """Per writer fold: the classifier trained on the training writers' pairs, its
    EERs on the test writers' pairs (formed as ``skseg benchmark`` forms them);
    and its validation-writer skilled EER (``validation_eer_skilled``): trained
    again without the training writers of the first of ``n_splits`` writer groups,
    scored on all their pairs, so that a change is chosen without the test
    writers (a fold needs two training writers). ``tree_params`` go to
    :func:`~skseg._boosting.fit_boosted_trees`."""
    positions = np.arange(len(descriptor_rows))
    folds = []
    for k, (train, test) in enumerate(GroupKFold(n_splits=n_splits).split(positions,
                                                                          groups=writer)):
        # One of n_splits groups of the training writers (one writer each if fewer).
        inner = GroupKFold(n_splits=min(n_splits, len(np.unique(writer[train]))))
        inner_train, valid = next(inner.split(train, groups=writer[train]))
        scored = {name: _trained_and_scored(descriptor_rows, writer, genuine, fit_on, score_on,
                                            random_state + k, random_state, tree_params)
                  for name, fit_on, score_on in (("test", train, test),
                                                 ("validation", train[inner_train],
                                                  train[valid]))}
        folds.append({"fold": k, **_eers(scored["test"]),
                      "validation_eer_skilled": scored["validation"]["eer_skilled"]})
    return folds


def _trained_and_scored(descriptor_rows, writer, genuine, fit_on, score_on, pair_seed,
                        tree_seed, tree_params):
    """The metrics of the classifier trained on the pairs of the images ``fit_on``
    (SigNet pairs, one random forgery per genuine pair) on every pair of the
    images ``score_on``."""
    pairs, y, _, _ = _pairs_of(fit_on, writer[fit_on], genuine[fit_on], random_forgeries=1.0,
                               return_kind=True, random_state=pair_seed)
    test_pairs, test_y, claimed, kind = _pairs_of(
        score_on, writer[score_on], genuine[score_on], n_forgeries_per_genuine_pair=_ALL_PAIRS,
        random_forgeries=1.0, return_kind=True, random_state=pair_seed)
    model = fit_boosted_trees(pair_features(descriptor_rows, pairs), y,
                              random_state=tree_seed, **(tree_params or {}))
    score = model.decision_function(pair_features(descriptor_rows, test_pairs))
    return _fold_metrics(test_y, kind, score, claimed)


def _rates(figures):
    return (f"skilled {100 * figures['eer_skilled']:.1f} %, "
            f"random {100 * figures['eer_random']:.1f} %")


def _tree_params(parser, text):
    """``--tree-params`` as a dict, or the parser's error naming what is wrong."""
    if text is None:
        return {}
    params = json_params(parser, "--tree-params", text, what="classifier settings")
    known = HistGradientBoostingClassifier().get_params()
    unknown = sorted(key for key in params if key not in known or key == "random_state")
    if unknown:
        parser.error(f"--tree-params: {unknown} are not settings of the classifier (random_state "
                     f"is --seed); it takes {sorted(set(known) - {'random_state'})}")
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="signature folder (any load_signatures layout)")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None, help="processes for the descriptors")
    parser.add_argument("--flatten-background", action="store_true",
                        help="divide each scan by its paper before finding the ink (a check "
                        "that the paper's grey level is not what the descriptors tell)")
    parser.add_argument("--soften", type=float, default=0.0, metavar="RADIUS",
                        help="blur each scan by a Gaussian of this radius before finding "
                        "the ink (a check that the scans' sharpness is not what they tell)")
    parser.add_argument("--run-lengths", action="store_true",
                        help="append the run-length histograms of the ink at the stroke's "
                        "scale to each descriptor (a candidate part)")
    parser.add_argument("--tree-params", default=None, metavar="JSON",
                        help="HistGradientBoostingClassifier settings that replace or extend "
                        "the package's (skseg._boosting.TREE_SETTINGS), e.g. "
                        "'{\"max_features\": 0.3}'")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    tree_params = _tree_params(parser, args.tree_params)
    data = load_signatures(args.data, layout=args.layout)
    items, writer, genuine = _items_of(data)
    start = time.perf_counter()
    rows = descriptors(items, n_jobs=args.n_jobs, run_lengths=args.run_lengths,
                       flatten_background=args.flatten_background, soften=args.soften)
    out = {"data": str(args.data), "n_images": len(items),
           "flatten_background": args.flatten_background, "soften": args.soften,
           "run_lengths": args.run_lengths, "tree_params": tree_params,
           "descriptor_seconds": time.perf_counter() - start}
    print(f"{len(items)} descriptors of {rows.shape[1]} numbers in "
          f"{out['descriptor_seconds']:.0f} s")
    out["alone"] = alone(rows, writer, genuine, random_state=args.seed, tree_params=tree_params)
    for f in out["alone"]:
        print(f"fold {f['fold']}, descriptors alone: EER {_rates(f)}; validation writers: "
              f"skilled {100 * f['validation_eer_skilled']:.1f} %")
    means = {key: np.mean([f[key] for f in out["alone"]]) for key in out["alone"][0]}
    print(f"mean: EER {_rates(means)}; validation writers: skilled "
          f"{100 * means['validation_eer_skilled']:.2f} %")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
