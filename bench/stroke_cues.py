"""What the ink's shape and texture tell, writer-independently: handcrafted stroke
descriptors alone, and fused with the verifier.

The verifier sees each signature fitted to a 155 x 220 canvas. This script
describes each scan instead by numbers taken from its ink at the scan's own
resolution (the ink is what :class:`~skseg.SignaturePreprocessor` finds: Otsu's
threshold on a lightly blurred copy, cropped to the ink's box), and learns from
pairs of training writers which differences between two descriptors mark a
forgery (the *dichotomy* approach of writer-independent verification: one
classifier on ``|d1 - d2|`` for every writer). Only the ink mask is used, never
its grey levels, where CEDAR's two scanning sessions differ (see
``background_shortcut.py``); two options check what the mask's edge could still
carry of the scan: ``--flatten-background`` (the paper's grey level) and
``--soften`` (the scan's sharpness).

Descriptor parts (:data:`PARTS`): ink box and ink amount, slant and spread
(second moments), connected components, stroke widths (distance transform on
the ridge of the strokes), contour roughness, a 4 x 8 ink-density grid,
column and row profiles, gradient-direction histograms on 2 x 4 and 4 x 8
cells, and the histogram of 3 x 3 ink patterns (the 256 configurations of a
pixel's neighbours) after scaling the ink so that its median stroke is about
2 pixels wide: how the pen moved, at the scale of the stroke.

1. **Alone**: on each writer fold of ``skseg benchmark`` (same ``GroupKFold``
   split), scikit-learn's ``HistGradientBoostingClassifier`` learns from the
   training writers' pairs (genuine-genuine, genuine-skilled forgery and one
   random forgery per genuine pair) and scores the test writers' pairs, as the
   benchmark forms them.
2. **Fused** (``--fold K``): the default verifier trains on fold K as in
   ``skseg benchmark``; the same classifier learns from the verifier's own
   training pairs; on the verifier's validation writers (where it chooses its
   threshold) the weight ``w`` of ``distance - w * cue`` (``cue``: the
   classifier's log-odds) is the one of :data:`WEIGHTS` with the lowest EER
   (0: the verifier alone), and the threshold is chosen again there. The test
   writers choose nothing; they are scored by the verifier alone, the
   descriptors alone and fused.

Usage::

    python bench/stroke_cues.py ../shared/data/cedar
    python bench/stroke_cues.py ../shared/data/cedar --fold 0 1 2 3 4 --out strokes.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from PIL import Image, ImageFilter
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold
from sklearn.utils import column_or_1d

from skseg import SiameseVerifier
from skseg._image import load_grayscale
from skseg.datasets import load_signatures
from skseg.datasets._pairs import _items_of
from skseg.evaluation import _ALL_PAIRS, _fold_metrics, _pairs_of, cross_validate_writers
from skseg.preprocessing import _blurred_threshold, _flatten, _ink_bounds
from skseg.verifier import _equal_error_rate

#: The descriptor's parts and their lengths, in order.
PARTS = {
    "box and moments": 13,
    "stroke widths and roughness": 5,
    "density grid 4 x 8": 32,
    "column and row profiles": 24,
    "gradient directions 2 x 4": 64,
    "gradient directions 4 x 8": 256,
    "3 x 3 ink patterns": 256,
}
N_FEATURES = sum(PARTS.values())

#: Weights of the descriptors' log-odds tried on the validation writers (0: the
#: verifier alone); the network's distances span about 0 to 2, the log-odds +-10.
WEIGHTS = (0.0,) + tuple(2.0 ** k for k in range(-8, 3))

_DIRECTION_BINS = 8


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
    ink = (gray <= threshold)[_ink_bounds(blurred, threshold)]
    return ink if ink.any() else None


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


def _resized(ink, width, height):
    """The mask box-averaged to ``width`` x ``height``, as ink fractions in [0, 1]."""
    image = Image.fromarray(ink.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.BOX), np.float64) / 255


def stroke_descriptor(ink):
    """The :data:`N_FEATURES` numbers of one ink mask (see :data:`PARTS`); all NaN for
    None (no ink), which the classifier takes as missing."""
    if ink is None:
        return np.full(N_FEATURES, np.nan)
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
    # Stroke widths: the distance transform on the strokes' ridge (its local maxima).
    distance = ndimage.distance_transform_edt(ink)
    ridge = distance[ink & (distance >= ndimage.maximum_filter(distance, 3))]
    quartiles = np.percentile(ridge, [10, 50, 90])
    smoothed = ndimage.binary_closing(ndimage.binary_opening(ink))
    smooth_perimeter = smoothed.sum() - ndimage.binary_erosion(smoothed).sum()
    widths_and_roughness = [*np.log1p(quartiles), np.log(perimeter / max(smooth_perimeter, 1)),
                            np.log1p(ridge.std())]
    small = _resized(ink, 128, 64)  # the shape at one size, for the grid and directions
    grid = small.reshape(4, 16, 8, 16).mean(axis=(1, 3)).ravel()
    profiles = [np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(p)), p / area)
                for p, n in ((ink.sum(axis=0), 16), (ink.sum(axis=1), 8))]
    # Patterns at the stroke's scale: the median ridge width brought to about 2 pixels.
    scale = float(np.clip(2.0 / max(quartiles[1], 0.5), 0.2, 1.0))
    scaled = _resized(ink, max(8, round(width * scale)), max(8, round(height * scale))) > 0.5
    return np.concatenate([
        box_and_moments, widths_and_roughness, grid / max(grid.sum(), 1e-12), *profiles,
        _direction_histograms(small, [(2, 4), (4, 8)]),
        _neighbour_patterns(scaled),
    ])


def descriptors(items, n_jobs=None, **mask_options):
    """One :func:`stroke_descriptor` row per item (paths, PIL images or arrays);
    ``mask_options`` go to :func:`ink_mask`."""
    rows = Parallel(n_jobs=n_jobs)(delayed(_describe)(item, mask_options) for item in items)
    return np.array(rows, dtype=np.float64).reshape(len(items), N_FEATURES)


def _describe(item, mask_options):
    return stroke_descriptor(ink_mask(item, **mask_options))


def pair_features(descriptor_rows, pairs):
    """``|d1 - d2|`` of each pair's two descriptors (NaN where an image has no ink)."""
    pairs = np.asarray(pairs, dtype=np.int64)
    return np.abs(descriptor_rows[pairs[:, 0]] - descriptor_rows[pairs[:, 1]])


def cue_classifier(random_state=0):
    """The classifier of :func:`pair_features` (label 1: genuine pair)."""
    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05,
                                          random_state=random_state)


def _eers(metrics):
    return {name: metrics[name] for name in
            ("eer_skilled", "eer_random", "eer_skilled_writer", "eer_random_writer")}


def alone(descriptor_rows, writer, genuine, n_splits=5, random_state=0):
    """Per writer fold: the classifier trained on the training writers' pairs, its
    EERs on the test writers' pairs (formed as ``skseg benchmark`` forms them)."""
    positions = np.arange(len(descriptor_rows))
    folds = []
    for k, (train, test) in enumerate(GroupKFold(n_splits=n_splits).split(positions,
                                                                          groups=writer)):
        pairs, y, _, _ = _pairs_of(positions[train], writer[train], genuine[train],
                                   random_forgeries=1.0, return_kind=True,
                                   random_state=random_state + k)
        test_pairs, test_y, claimed, kind = _pairs_of(
            positions[test], writer[test], genuine[test],
            n_forgeries_per_genuine_pair=_ALL_PAIRS, random_forgeries=1.0,
            return_kind=True, random_state=random_state + k)
        model = cue_classifier(random_state).fit(pair_features(descriptor_rows, pairs), y)
        score = model.decision_function(pair_features(descriptor_rows, test_pairs))
        folds.append({"fold": k, **_eers(_fold_metrics(test_y, kind, score, claimed))})
    return folds


def stroke_cue_verifier(descriptor_rows, records):
    """A SiameseVerifier class whose distance is the network's less ``weight_`` times
    the descriptors' log-odds; ``descriptor_rows`` are the rows of the bank of
    canvases it is given (``cross_validate_writers``: the data's images, in order).

    ``records`` gets ``"validation"`` (the validation writers' EER of the network
    alone, of the descriptors alone, and fused) and ``"test"`` (the network's and the
    descriptors' decision values on the pairs scored last).
    """

    class StrokeCueVerifier(SiameseVerifier):
        def _validation_split(self, index, target, n_images, rng):
            self._split = super()._validation_split(index, target, n_images, rng)
            return self._split

        def fit(self, X, y):
            if not hasattr(X, "images") or len(X.images) != len(descriptor_rows):
                raise ValueError(
                    f"the stroke-cue verifier needs pairs into the bank its "
                    f"{len(descriptor_rows)} descriptor rows describe; got {X!r}.")
            super().fit(X, y)
            train_idx, valid_idx = self._split
            target = (column_or_1d(y) == self.classes_[1]).astype(int)
            self.cue_ = cue_classifier().fit(pair_features(descriptor_rows,
                                                           X.index[train_idx]),
                                             target[train_idx])
            # As tensors, as the verifier's own threshold choice takes them.
            valid = X[valid_idx]
            network = torch.as_tensor(SiameseVerifier._distances(self, valid), dtype=torch.float64)
            cue = torch.as_tensor(self._cue(valid))
            target = torch.as_tensor(target[valid_idx])
            eers = {w: _equal_error_rate(target, network - w * cue) for w in WEIGHTS}
            self.weight_ = min(WEIGHTS, key=lambda w: (eers[w], w))  # ties: the smaller
            records["weight"] = self.weight_
            records["validation"] = {"network": self.validation_eer_,
                                     "descriptors": _equal_error_rate(target, -cue),
                                     "fused": eers[self.weight_]}
            self.validation_eer_ = eers[self.weight_]
            self._calibrate(network - self.weight_ * cue, target, self.threshold_strategy,
                            self.threshold_target, choose=self.threshold == "auto")
            return self

        def _cue(self, X):
            return self.cue_.decision_function(pair_features(descriptor_rows, X.index))

        def _distances(self, X, numpy=True):
            network = super()._distances(X, numpy=True)  # the classifier is not torch
            cue = self._cue(X)
            records["test"] = {"network": self.threshold_ - network, "descriptors": cue}
            fused = network - self.weight_ * cue
            return fused if numpy else torch.as_tensor(fused)

    return StrokeCueVerifier


def fused_fold(data, descriptor_rows, fold=0, n_splits=5, seed=0, verifier_params=None):
    """The default verifier on writer fold ``fold``, alone, the descriptors alone, and
    fused (the weight chosen on the verifier's validation writers)."""
    records = {}
    verifier = stroke_cue_verifier(descriptor_rows, records)
    start = time.perf_counter()
    result = cross_validate_writers(data, verifier(random_state=seed, **(verifier_params or {})),
                                    n_splits=n_splits, folds=[fold], progress=False)
    scores = result["scores"][0]

    def test(decision):
        return _eers(_fold_metrics(scores["y"], scores["kind"], decision, scores["writer"]))

    return {
        "fold": fold,
        "seed": seed,
        "weight": float(records["weight"]) if "weight" in records else None,
        "validation_eer": records["validation"],
        "network": test(records["test"]["network"]),
        "descriptors": test(records["test"]["descriptors"]),
        "fused": test(scores["decision"]),
        "train_seconds": result["folds"][0]["train_seconds"],
        "seconds": time.perf_counter() - start,
    }


def _rates(figures):
    return (f"skilled {100 * figures['eer_skilled']:.1f} %, "
            f"random {100 * figures['eer_random']:.1f} %")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="signature folder (any load_signatures layout)")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--fold", type=int, nargs="*", default=[],
                        help="writer fold(s) for the fused check (none: descriptors alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None, help="processes for the descriptors")
    parser.add_argument("--flatten-background", action="store_true",
                        help="divide each scan by its paper before finding the ink (a check "
                        "that the paper's grey level is not what the descriptors tell)")
    parser.add_argument("--soften", type=float, default=0.0, metavar="RADIUS",
                        help="blur each scan by a Gaussian of this radius before finding "
                        "the ink (a check that the scans' sharpness is not what they tell)")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    data = load_signatures(args.data, layout=args.layout)
    items, writer, genuine = _items_of(data)
    start = time.perf_counter()
    rows = descriptors(items, n_jobs=args.n_jobs, flatten_background=args.flatten_background,
                       soften=args.soften)
    out = {"data": str(args.data), "n_images": len(items),
           "flatten_background": args.flatten_background, "soften": args.soften,
           "descriptor_seconds": time.perf_counter() - start}
    print(f"{len(items)} descriptors of {N_FEATURES} numbers in "
          f"{out['descriptor_seconds']:.0f} s")
    if not args.fold:
        out["alone"] = alone(rows, writer, genuine, random_state=args.seed)
        for f in out["alone"]:
            print(f"fold {f['fold']}, descriptors alone: EER {_rates(f)}")
    out["fused"] = []
    for fold in args.fold:
        r = fused_fold(data, rows, fold=fold, seed=args.seed)
        out["fused"].append(r)
        v = r["validation_eer"]
        print(f"fold {fold}: weight {r['weight']:g}; validation EER network "
              f"{100 * v['network']:.1f} %, descriptors {100 * v['descriptors']:.1f} %, fused "
              f"{100 * v['fused']:.1f} %; test: network {_rates(r['network'])}; descriptors "
              f"{_rates(r['descriptors'])}; fused {_rates(r['fused'])}  "
              f"({r['train_seconds']:.0f} s)", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
