"""A network that sees the ink at the scale of the stroke: what small windows of
each scan tell, writer-independently, alone and with the stroke descriptors.

:class:`~skseg.SiameseVerifier`'s network sees the whole signature fitted to
155 x 220 pixels; the stroke descriptors (:mod:`skseg.strokes`) see the ink at
the scan's own resolution, but only through hand-made histograms. This script
trains :mod:`skseg.patches`' small CNN (the verifier's patch term's) on 32 x 32
windows of each scan's ink mask brought to the scale of the stroke (the median
stroke about 2 pixels wide, as the descriptors' 3 x 3 ink patterns see it), to
tell the training writers' genuine windows and their forgers' windows apart: one
class per writer and kind. A scan's embedding is the mean of its windows'
(L2-normalised) embeddings; a pair's distance is the Euclidean distance between
its two scans' embeddings.

Each writer fold is ``skseg benchmark``'s (same ``GroupKFold`` split, test pairs
formed the same way). The training writers are split in two halves and a
network is trained on each, so that every training pair gets the distance of
the network that never saw its writer (its pairs, random forgeries included,
are formed within its half); a test pair gets the mean of the two networks'
distances. Three scores are reported per fold, all on the same pairs: the patch
distance alone, the stroke descriptors alone (gradient boosting on ``|d1 -
d2|``, as ``stroke_cues.py``) and the descriptors with the patch distance as
one more feature.

Only the ink mask is used, never its grey levels (see ``background_shortcut.py``).

Usage::

    python bench/patch_net.py ../shared/data/cedar --out bench/results/patch_cedar.json
    python bench/patch_net.py ../shared/data/cedar --epochs 1 --only-folds 0   # a quick look
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from joblib import Parallel, delayed
from sklearn.model_selection import GroupKFold

from skseg._boosting import fit_boosted_trees
from skseg._pairs import descriptor_differences
from skseg.datasets import load_signatures
from skseg.datasets._pairs import _items_of
from skseg.evaluation import _ALL_PAIRS, _fold_metrics, _pairs_of
# The windows, the network, its training and embeddings: the verifier's patch term's.
from skseg.patches import (WINDOW, PatchNet, embed_masks, pair_distances, pool_windows,
                           random_windows, train_patch_net)
from skseg.strokes import _descriptor_and_stroke_mask, _scaled

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is no package
# The ink exactly as stroke_cues.py finds it, and the same EERs of a fold.
from stroke_cues import _eers, ink_mask  # noqa: E402


def _mask_and_descriptor(item):
    descriptor, mask = _descriptor_and_stroke_mask(ink_mask(item))
    return mask, descriptor


def masks_and_descriptors(items, n_jobs=None):
    """Each item's ink mask at the scale of the stroke (None for a scan without ink)
    and its stroke descriptor, from one ink mask per item."""
    pairs = Parallel(n_jobs=n_jobs)(delayed(_mask_and_descriptor)(item) for item in items)
    return [m for m, _ in pairs], np.array([d for _, d in pairs], dtype=np.float64)


def at_ink_height(masks, reference, height):
    """``masks`` all resized by one factor, so that the median height of the masks
    at positions ``reference`` (the training scans) becomes ``height`` pixels: a
    signature's size in windows alike for data sets whose strokes are thin or wide
    for their size. Box-averaged, so the masks become ink fractions in [0, 1]."""
    factor = height / np.median([masks[i].shape[0] for i in reference if masks[i] is not None])
    return [None if mask is None else _scaled(mask, factor).astype(np.float32) for mask in masks]


def train_pair_patch_net(masks, pairs, target, *, epochs=6, windows_per_image=32,
                         windows_per_scan=8, pairs_per_batch=16, margin=1.0, lr=2e-3, seed=0,
                         verbose=False):
    """A :class:`~skseg.patches.PatchNet` trained on the verification task itself:
    a scan is ``windows_per_scan`` random windows' embeddings, pooled as
    :func:`~skseg.patches.pool_windows` pools them for a pair's distance, and a
    pair's two scans are pulled together (genuine, ``target`` 1) or pushed at
    least ``margin`` apart (forged, 0) by the contrastive loss. Each epoch draws
    as many windows as the class-trained network's (``windows_per_image`` per
    mask), in pairs drawn half genuine, half forged. ``masks`` are indexed by
    ``pairs``' positions; all that pairs name must hold ink."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    pairs, target = np.asarray(pairs, dtype=np.int64), np.asarray(target)
    genuine_pairs, forged_pairs = pairs[target == 1], pairs[target == 0]
    net = PatchNet(1)
    optimizer = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    n_scans = len(np.unique(pairs))
    steps = max(1, n_scans * windows_per_image // (2 * windows_per_scan * pairs_per_batch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps)
    half = pairs_per_batch // 2
    y = torch.from_numpy(np.repeat([1.0, 0.0], [half, pairs_per_batch - half])).float()
    net.train()
    for epoch in range(epochs):
        total = 0.0
        for _ in range(steps):
            batch = np.concatenate([genuine_pairs[rng.integers(0, len(genuine_pairs), half)],
                                    forged_pairs[rng.integers(0, len(forged_pairs),
                                                              pairs_per_batch - half)]])
            windows = torch.from_numpy(np.concatenate(
                [random_windows(masks[i], windows_per_scan, rng) for i in batch.ravel()]))
            embedded = net.features(windows[:, None])
            scans = pool_windows(embedded.view(pairs_per_batch, 2, windows_per_scan, -1))
            distance = (scans[:, 0] - scans[:, 1]).norm(dim=1)
            loss = (y * distance ** 2 + (1 - y) * F.relu(margin - distance) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        if verbose:
            print(f"    epoch {epoch + 1}/{epochs}: pair loss {total / steps:.3f}", flush=True)
    return net.eval()


def _split_halves(writers, rng):
    """The distinct ``writers`` in two halves drawn at random."""
    shuffled = rng.permutation(np.unique(writers))
    return shuffled[: len(shuffled) // 2], shuffled[len(shuffled) // 2:]


def evaluate_fold(masks, descriptor_rows, writer, genuine, train, test, *, epochs=6,
                  ink_height=None, augment=False, objective="classes", random_state=0,
                  verbose=False):
    """One writer fold (``train`` and ``test``: positions): the patch distance alone,
    the descriptors alone and both, each scored on the test writers' pairs. With
    ``ink_height``, the networks see the masks :func:`at_ink_height`, its factor
    taken from the training scans."""
    if ink_height is not None:
        masks = at_ink_height(masks, train, ink_height)
    rng = np.random.default_rng(random_state)
    halves = [train[np.isin(writer[train], half)]
              for half in _split_halves(writer[train], rng)]
    train_pairs, train_y, train_distance, rows = [], [], [], []
    for k, own in enumerate(halves):
        other = halves[1 - k]
        inked = own[[masks[i] is not None for i in own]]
        if objective == "pairs":
            own_pairs, own_y, _ = _pairs_of(inked, writer[inked], genuine[inked],
                                            random_forgeries=1.0, random_state=random_state + k)
            net = train_pair_patch_net(masks, own_pairs, own_y, epochs=epochs,
                                       seed=random_state + k, verbose=verbose)
        else:
            if objective == "writers":  # one class per writer, of genuine scans only
                inked = inked[genuine[inked]]
                labels = writer[inked].astype(str)
            else:
                labels = np.char.add(writer[inked].astype(str),
                                     np.where(genuine[inked], "/genuine", "/forged"))
            net = train_patch_net([masks[i] for i in inked], labels, epochs=epochs,
                                  augment=augment, seed=random_state + k, verbose=verbose)
        rows.append(np.full((len(masks), net.head.in_features), np.nan))
        seen = np.concatenate([other, test])
        rows[k][seen] = embed_masks(net, [masks[i] for i in seen], seed=random_state)
        # The other half's pairs, formed within it: distances from a network that never saw them.
        pairs, y, _, _ = _pairs_of(other, writer[other], genuine[other], random_forgeries=1.0,
                                   return_kind=True, random_state=random_state + k)
        train_pairs.append(np.asarray(pairs, dtype=np.int64))
        train_y.append(y)
        train_distance.append(pair_distances(rows[k], pairs))
    train_pairs, train_y = np.concatenate(train_pairs), np.concatenate(train_y)
    train_distance = np.concatenate(train_distance)
    test_pairs, test_y, claimed, kind = _pairs_of(
        test, writer[test], genuine[test], n_forgeries_per_genuine_pair=_ALL_PAIRS,
        random_forgeries=1.0, return_kind=True, random_state=random_state)
    test_pairs = np.asarray(test_pairs, dtype=np.int64)
    test_distance = np.mean([pair_distances(r, test_pairs) for r in rows], axis=0)

    def features(pairs, distance, with_patch):
        differences = descriptor_differences(descriptor_rows, pairs)
        return np.column_stack([differences, distance]) if with_patch else differences

    out = {"patch alone": _eers(_fold_metrics(test_y, kind, -test_distance, claimed))}
    for name, with_patch in (("descriptors alone", False), ("descriptors and patch", True)):
        model = fit_boosted_trees(features(train_pairs, train_distance, with_patch), train_y,
                                  random_state=random_state)
        score = model.decision_function(features(test_pairs, test_distance, with_patch))
        out[name] = _eers(_fold_metrics(test_y, kind, score, claimed))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="signature folder (any load_signatures layout)")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each patch network")
    parser.add_argument("--ink-height", type=float, default=None, metavar="PX",
                        help="resize each fold's masks so that the training scans' median "
                             "mask is PX pixels high (default: the stroke's scale only)")
    parser.add_argument("--augment", action="store_true",
                        help="train on windows turned, zoomed and slanted at random "
                             "(skseg.patches.warp_windows)")
    parser.add_argument("--objective", choices=("classes", "writers", "pairs"),
                        default="classes",
                        help="train the patch network to tell writer x kind classes apart "
                             "(default), the writers from their genuine scans only, or "
                             "on the training pairs (contrastive loss)")
    parser.add_argument("--n-splits", type=int, default=5, help="writer folds")
    parser.add_argument("--only-folds", type=int, nargs="+", default=None, metavar="K",
                        help="run only these folds (0-based)")
    parser.add_argument("--n-jobs", type=int, default=None, help="processes for the masks")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1; got {args.epochs}.")
    if args.ink_height is not None and args.ink_height < WINDOW:
        parser.error(f"--ink-height must be at least the window, {WINDOW} px; "
                     f"got {args.ink_height}.")
    if args.only_folds and not all(0 <= k < args.n_splits for k in args.only_folds):
        parser.error(f"--only-folds must lie in 0..{args.n_splits - 1}; got {args.only_folds}.")
    torch.manual_seed(args.seed)
    items, writer, genuine = _items_of(load_signatures(args.data, layout=args.layout))
    writer, genuine = np.asarray(writer), np.asarray(genuine)
    start = time.perf_counter()
    masks, descriptor_rows = masks_and_descriptors(items, n_jobs=args.n_jobs)
    out = {"data": str(args.data), "n_images": len(items), "epochs": args.epochs,
           "ink_height": args.ink_height, "augment": args.augment,
           "objective": args.objective, "seed": args.seed,
           "torch": torch.__version__,
           "threads": torch.get_num_threads(),
           "mask_seconds": time.perf_counter() - start, "folds": []}
    positions = np.arange(len(items))
    splits = GroupKFold(n_splits=args.n_splits).split(positions, groups=writer)
    for k, (train, test) in enumerate(splits):
        if args.only_folds is not None and k not in args.only_folds:
            continue
        fold_start = time.perf_counter()
        fold = evaluate_fold(masks, descriptor_rows, writer, genuine, train, test,
                             epochs=args.epochs, ink_height=args.ink_height,
                             augment=args.augment, objective=args.objective,
                             random_state=args.seed + k, verbose=True)
        fold.update(fold=k, seconds=time.perf_counter() - fold_start)
        out["folds"].append(fold)
        print(f"fold {k} ({fold['seconds']:.0f} s): " + "; ".join(
            f"{name} {100 * fold[name]['eer_skilled']:.1f} % skilled, "
            f"{100 * fold[name]['eer_random']:.1f} % random"
            for name in ("patch alone", "descriptors alone", "descriptors and patch")),
            flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
