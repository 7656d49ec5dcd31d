"""How much does a signature's size tell genuine from skilled forgery?

:class:`~skseg.SignaturePreprocessor` crops each signature to its ink and fits it to
the canvas, so the verifier never sees how large it was written. Forgers write
slowly and copy the shape, not the size, so size may carry what the canvas lost.
This script measures it, writer-independently:

1. **Size alone**, no training: for every writer, every genuine-genuine and every
   genuine-skilled-forgery pair (as the benchmark's test pairs), scored by the
   difference of the two ink boxes' log-height, log-width, or both summed. Both
   images of a pair must be scanned at one resolution; the score has no parameter.
2. **Fused with the verifier** (``--fold K``): on writer fold K of ``skseg benchmark``
   (same ``GroupKFold`` split), 20 % of the training writers are set aside as
   *fusion writers*; the default verifier trains on the others; the weight of the
   size term, ``score = decision_function - alpha * size_distance``, is the one of a
   fixed grid with the lowest EER on the fusion writers' pairs; the test writers
   then get the verifier's score alone and the fused score. The test writers are
   never used to choose anything.

Usage::

    python bench/size_cue.py ../shared/data/cedar
    python bench/size_cue.py ../shared/data/cedar --fold 0 --out size_cue.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit

from skseg import PairedCanvases, SignaturePreprocessor, SiameseVerifier
from skseg._image import describe_item
from skseg.datasets import load_signatures
from skseg.datasets._pairs import _items_of
from skseg.evaluation import _ALL_PAIRS, _fold_metrics, _pairs_of
from skseg.metrics import equal_error_rate
from skseg.verifier import SIZE_WEIGHTS

#: Weights of the size term tried on the fusion writers (0: the verifier alone): the
#: grid the verifier's own ``size_weight="auto"`` searches, so both measure one thing.
ALPHAS = SIZE_WEIGHTS


def canvases_and_log_sizes(items, preprocessor=None):
    """Each image's canvas, and the log-height and log-width of its ink box, in pixels.

    The box ``preprocessor`` (default: ``SignaturePreprocessor()``) crops to and
    records; an image without ink has no size, and is refused by name.
    """
    preprocessor = SignaturePreprocessor() if preprocessor is None else preprocessor
    canvases, sizes = preprocessor.transform_with_sizes(items)
    blank = np.flatnonzero(np.isnan(sizes).any(axis=1))
    if len(blank):
        i = int(blank[0])
        raise ValueError(f"image {i} ({describe_item(items[i])}) has no ink: its size is "
                         "undefined.")
    return canvases, np.log(sizes)


def size_distance(log_sizes, pairs, which="both"):
    """``|log h1 - log h2|``, the same for widths, or their sum (``which="both"``)."""
    pairs = np.asarray(pairs, dtype=np.int64)  # make_pairs returns the items' own dtype
    diff = np.abs(log_sizes[pairs[:, 0]] - log_sizes[pairs[:, 1]])
    return {"height": diff[:, 0], "width": diff[:, 1], "both": diff.sum(axis=1)}[which]


def size_alone(log_sizes, writer, genuine):
    """Skilled-forgery EER of the size distance over every writer's test-style pairs."""
    positions = np.arange(len(writer))
    pairs, y, _ = _pairs_of(positions, writer, genuine,
                            n_forgeries_per_genuine_pair=_ALL_PAIRS, random_state=0)
    return {which: equal_error_rate(y, -size_distance(log_sizes, pairs, which))[0]
            for which in ("height", "width", "both")} | {"n_pairs": int(len(y))}


def _eers(y, kind, score):
    """Skilled and random EER, as a benchmark fold computes them."""
    metrics = _fold_metrics(y, kind, score)
    return {name: metrics[name] for name in ("eer_skilled", "eer_random")}


def fused_fold(canvases, writer, genuine, log_sizes, fold=0, n_splits=5, seed=0,
               verifier_params=None):
    """The verifier without its own size term, alone and fused with the size distance,
    on one writer fold."""
    positions = np.arange(len(canvases))
    train, test = list(GroupKFold(n_splits=n_splits).split(positions, groups=writer))[fold]
    fit_rows, fusion_rows = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
                                 .split(train, groups=writer[train]))
    fit, fusion = train[fit_rows], train[fusion_rows]

    def pairs(rows, **kwargs):
        return _pairs_of(positions[rows], writer[rows], genuine[rows], return_kind=True,
                         random_state=seed + fold, **kwargs)

    fit_pairs, fit_y, _, _ = pairs(fit)
    fusion_pairs, fusion_y, _, _ = pairs(fusion, n_forgeries_per_genuine_pair=_ALL_PAIRS)
    test_pairs, test_y, _, kind = pairs(test, n_forgeries_per_genuine_pair=_ALL_PAIRS,
                                        random_forgeries=1.0)
    start = time.perf_counter()
    # size_weight=0: the verifier's own size term is this fusion, built in.
    verifier = SiameseVerifier(random_state=seed, **{"size_weight": 0, **(verifier_params or {})})
    verifier.fit(PairedCanvases(canvases, fit_pairs.astype(np.int64)), fit_y)
    seconds = time.perf_counter() - start

    def decision_and_size(pair_index):
        # Embedded once per pair set; each weight only rescales the size term.
        decision = verifier.decision_function(PairedCanvases(canvases, pair_index.astype(np.int64)))
        return decision, size_distance(log_sizes, pair_index)

    fusion_decision, fusion_size = decision_and_size(fusion_pairs)
    test_decision, test_size = decision_and_size(test_pairs)
    fusion_eer = {a: equal_error_rate(fusion_y, fusion_decision - a * fusion_size)[0]
                  for a in ALPHAS}
    alpha = min(ALPHAS, key=lambda a: (fusion_eer[a], a))  # ties: the smaller weight
    return {
        "fold": fold,
        "seed": seed,
        "writers": {"fit": int(len(np.unique(writer[fit]))),
                    "fusion": int(len(np.unique(writer[fusion]))),
                    "test": int(len(np.unique(writer[test])))},
        "fusion_eer": {str(a): e for a, e in fusion_eer.items()},
        "alpha": alpha,
        "verifier": _eers(test_y, kind, test_decision),
        "fused": _eers(test_y, kind, test_decision - alpha * test_size),
        "train_seconds": seconds,
    }


def _rates(figures):
    return ", ".join(f"{kind} EER {100 * figures[f'eer_{kind}']:.1f} %"
                     for kind in ("skilled", "random"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="signature folder (any load_signatures layout)")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--fold", type=int, nargs="*", default=[],
                        help="writer fold(s) for the fused check (none: size alone only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    data = load_signatures(args.data, layout=args.layout)
    items, writer, genuine = _items_of(data)
    canvases, log_sizes = canvases_and_log_sizes(items)
    out = {"data": str(args.data), "size_alone": size_alone(log_sizes, writer, genuine),
           "folds": []}
    alone = out["size_alone"]
    print(f"size alone, {alone['n_pairs']} pairs: skilled EER "
          + ", ".join(f"{w} {100 * alone[w]:.1f} %" for w in ("height", "width", "both")))
    for fold in args.fold:
        r = fused_fold(canvases, writer, genuine, log_sizes, fold=fold, seed=args.seed)
        out["folds"].append(r)
        print(f"fold {fold}: alpha {r['alpha']} "
              f"(chosen on {r['writers']['fusion']} fusion writers); "
              f"verifier {_rates(r['verifier'])}; fused {_rates(r['fused'])}  "
              f"({r['train_seconds']:.0f} s)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
