"""Does the scan background tell genuine from forged? Before and after preprocessing.

CEDAR's genuine signatures were scanned on grey paper (about 235-246) and its
forgeries on white (248-255): a classifier that never looks at the handwriting can
separate them. This script measures that shortcut with writer-grouped
cross-validation (``GroupKFold`` by writer, ROC AUC, genuine = positive class):

(a) on the raw scans, features of the background pixels only (the pixels that are not
    ink, ink found with Otsu's threshold, as the preprocessor finds it);
(b) the same features on the canvases of ``SignaturePreprocessor``;
(c) global statistics of the whole image (mean intensity, ink fraction, ink grey
    levels), raw and after preprocessing with each ``ink_contrast``: what a model could
    still pick up without the background. Unlike (a), a difference here may be a real
    property of the handwriting (forgers write slowly, with heavier strokes).

Usage::

    python bench/background_shortcut.py ../shared/data/cedar [--out results.json]

The data folder uses CEDAR's layout: ``full_org/original_<writer>_<n>.png`` (genuine)
and ``full_forg/forgeries_<writer>_<n>.png`` (forged).
"""

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skseg._image import load_grayscale
from skseg.preprocessing import SignaturePreprocessor, _otsu_threshold

_NAME = re.compile(r"_(\d+)_(\d+)\.png$", re.IGNORECASE)
_PERCENTILES = [1, 5, 25, 50, 75, 95, 99]


def list_cedar(root):
    """Paths, writer ids and genuine flags (1 genuine, 0 forged) of a CEDAR folder."""
    paths, writers, genuine = [], [], []
    for folder, flag in (("full_org", 1), ("full_forg", 0)):
        for path in sorted((Path(root) / folder).glob("*.png")):
            match = _NAME.search(path.name)
            if match:
                paths.append(str(path))
                writers.append(int(match.group(1)))
                genuine.append(flag)
    if not paths:
        sys.exit(f"no CEDAR images under {root} (expected full_org/ and full_forg/)")
    return paths, np.array(writers), np.array(genuine)


def background_features(gray, is_paper=None):
    """Statistics of the non-ink pixels of a scan (light paper, dark ink).

    ``is_paper`` marks them; by default, the pixels above Otsu's threshold.
    """
    if is_paper is None:
        blurred = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(1)))
        threshold, _ = _otsu_threshold(blurred)
        is_paper = gray > threshold if threshold is not None else np.ones(gray.shape, bool)
    paper = gray[is_paper] if is_paper.any() else gray.ravel()
    histogram = np.bincount(paper // 16, minlength=16) / paper.size
    return np.concatenate([[paper.mean(), paper.std()], np.percentile(paper, _PERCENTILES),
                           histogram])


def global_features(gray, is_ink=None):
    """Whole-image statistics of a scan (light paper, dark ink).

    ``is_ink`` marks the ink; by default, the pixels at or below Otsu's threshold.
    """
    if is_ink is None:
        blurred = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(1)))
        threshold, _ = _otsu_threshold(blurred)
        is_ink = gray <= threshold if threshold is not None else np.ones(gray.shape, bool)
    ink = gray[is_ink] if is_ink.any() else gray.ravel()
    return np.concatenate([[gray.mean(), gray.std(), ink.size / gray.size, ink.mean(),
                            ink.std()], np.percentile(ink, [10, 50, 90])])


def cv_auc(features, genuine, writers):
    """Writer-grouped 5-fold ROC AUC of two classifiers: mean and std over folds."""
    classifiers = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "boosting": HistGradientBoostingClassifier(max_iter=50, random_state=0),
    }
    result = {}
    # 2,640 rows: OpenMP threads cost more than they save, on a busy machine 5x more.
    with threadpool_limits(limits=1):
        for name, clf in classifiers.items():
            scores = cross_val_score(clf, features, genuine, groups=writers,
                                     cv=GroupKFold(n_splits=5), scoring="roc_auc")
            result[name] = {"mean": float(scores.mean()), "std": float(scores.std())}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="CEDAR folder holding full_org/ and full_forg/")
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--n-jobs", type=int, default=2, help="preprocessing jobs")
    args = parser.parse_args(argv)

    paths, writers, genuine = list_cedar(args.root)
    print(f"{len(paths)} images, {len(np.unique(writers))} writers, "
          f"{genuine.sum()} genuine, {len(genuine) - genuine.sum()} forged")
    start = time.perf_counter()
    raw = [load_grayscale(p) for p in paths]
    rows = {
        "raw: background pixels": [background_features(g) for g in raw],
        "raw: global statistics": [global_features(g) for g in raw],
    }
    timings = {}
    for ink_contrast in ("stretch", "equalize", "keep", "binary"):
        tic = time.perf_counter()
        canvases = SignaturePreprocessor(ink_contrast=ink_contrast,
                                         n_jobs=args.n_jobs).transform(paths)
        timings[ink_contrast] = time.perf_counter() - tic
        scans = 255 - canvases  # back to light paper, dark ink, for the same features
        if ink_contrast == "stretch":
            # the preprocessor's own background: every pixel it set to 0
            rows["preprocessed: background pixels"] = [
                background_features(s, is_paper=(c == 0)) for s, c in zip(scans, canvases)]
        rows[f"preprocessed ({ink_contrast}): global statistics"] = [
            global_features(s, is_ink=(c > 0)) for s, c in zip(scans, canvases)]

    results = {}
    print(f"\n{'features':<45} {'logistic AUC':>14} {'boosting AUC':>14}")
    for name, features in rows.items():
        results[name] = cv_auc(np.array(features), genuine, writers)
        cells = [f"{results[name][c]['mean']:.3f} ± {results[name][c]['std']:.3f}"
                 for c in ("logistic", "boosting")]
        print(f"{name:<45} {cells[0]:>14} {cells[1]:>14}")
    total = time.perf_counter() - start
    print(f"\npreprocessing {len(paths)} images (n_jobs={args.n_jobs}): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f"; total {total:.0f} s")
    if args.out:
        report = {
            "dataset": str(args.root), "n_images": len(paths),
            "n_writers": int(len(np.unique(writers))),
            "cv": "GroupKFold(5) by writer, scoring roc_auc, genuine = positive",
            "auc": results,
            "preprocessing_seconds": timings, "total_seconds": total,
            "machine": f"{platform.machine()}, {platform.python_version()}",
        }
        Path(args.out).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
