"""
=====================================================
Writer-independent evaluation on a real data set
=====================================================

Cross-validates a :class:`~skseg.SiameseVerifier` on a folder of real scans,
CEDAR for instance, with the writers split into folds: each fold's test
writers are never seen in training, and the decision threshold is chosen on
validation writers held out of the training writers. This script needs the
data, so the documentation shows it without running it::

    python examples/real_data_cedar.py /path/to/cedar
    python examples/real_data_cedar.py /path/to/cedar --writers 10 --max-epochs 1  # smoke test

Any layout that :func:`~skseg.datasets.load_signatures` recognises works
(CEDAR, Kaggle/SigComp 2011, BHSig260, ``<writer>/genuine|forged/``).

Every image is preprocessed once; pairs are index pairs into that bank of
canvases (:class:`~skseg.PairedCanvases`), so the 30,000 SigNet pairs of
CEDAR's 55 writers take the memory of its 2,640 canvases.
:func:`skseg.evaluation.cross_validate_writers` runs the same protocol in one
call and also reports random forgeries.
"""

import argparse
import time

import numpy as np
from sklearn.model_selection import GroupKFold, cross_validate

from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg.datasets import load_signatures, make_pairs
from skseg.metrics import eer_scorer


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Writer-independent cross-validation of a SiameseVerifier."
    )
    parser.add_argument("data_dir", help="folder of scans (CEDAR, Kaggle/SigComp, BHSig260...)")
    parser.add_argument("--writers", type=int, default=None,
                        help="use only this many writers (chosen at random)")
    parser.add_argument("--folds", type=int, default=5, help="writer folds (default 5)")
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--backbone", choices=["compact", "signet"], default="compact")
    parser.add_argument("--canvas", type=int, nargs=2, default=(155, 220),
                        metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--n-jobs", type=int, default=2, help="preprocessing jobs")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()

    # Images, writer ids and genuine flags, from the folder structure alone.
    data = load_signatures(args.data_dir)
    writers = np.unique(data.writer)
    if args.writers is not None and args.writers < len(writers):
        rng = np.random.RandomState(args.random_state)
        keep = np.isin(data.writer, rng.choice(writers, args.writers, replace=False))
        for key in ("paths", "writer", "genuine"):
            data[key] = data[key][keep]
    print(f"{data.layout} layout: {len(data.paths)} images, "
          f"{len(np.unique(data.writer))} writers, {data.genuine.sum()} genuine")

    # SigNet pairs, as paths; ``groups`` holds each pair's writer.
    pairs, y, groups = make_pairs(data, random_state=args.random_state)
    print(f"{len(pairs)} pairs: {y.sum()} genuine, {(y == 0).sum()} skilled forgeries")

    # Each distinct image once, then pairs as positions in that bank.
    tic = time.perf_counter()
    prep = SignaturePreprocessor(canvas_size=tuple(args.canvas), n_jobs=args.n_jobs)
    # The ink sizes and stroke descriptors travel with the canvases: the verifier
    # weighs how differently large the two signatures of a pair were written
    # (``size_weight``) and what their strokes tell (``stroke_weight``).
    canvases, sizes, strokes = prep.transform_with_cues(data.paths)
    position = {path: i for i, path in enumerate(data.paths)}
    index = np.array([[position[a], position[b]] for a, b in pairs])
    X = PairedCanvases(canvases, index, sizes, strokes)
    print(f"preprocessing: {time.perf_counter() - tic:.1f} s")

    # Folds of writers. The threshold is fitted inside each training fold
    # (``validation_fraction`` holds out whole writers), never on test writers.
    verifier = SiameseVerifier(
        backbone=args.backbone, max_epochs=args.max_epochs, random_state=args.random_state
    )
    folds = min(args.folds, len(np.unique(groups)))
    result = cross_validate(
        verifier, X, y, groups=groups, cv=GroupKFold(n_splits=folds),
        scoring={"eer": eer_scorer, "roc_auc": "roc_auc", "accuracy": "accuracy"},
    )
    eer = -result["test_eer"]
    print(f"\n{folds} writer folds, {args.max_epochs} epochs, backbone={args.backbone!r}, "
          f"canvas {tuple(args.canvas)}")
    print(f"EER      {eer.mean():.3f} +/- {eer.std():.3f}   per fold {np.round(eer, 3)}")
    for name in ("roc_auc", "accuracy"):
        values = result[f"test_{name}"]
        print(f"{name:<8} {values.mean():.3f} +/- {values.std():.3f}")
    print(f"training {result['fit_time'].sum():.0f} s, total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
