"""Shared fixtures: synthetic signature pairs, preprocessed once per session."""

import fnmatch
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures

#: Small canvases keep the CPU tests fast; the defaults (155 x 220) are for real use.
CANVAS = (64, 96)


class TinyBackbone(torch.nn.Module):
    """A custom backbone with ``forward`` only (no feature map for local matching)."""

    def __init__(self, embedding_dim=8):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((4, 4)), torch.nn.Flatten(),
                                       torch.nn.Linear(16, embedding_dim))

    def forward(self, x):
        return self.net(x)


def module_weights(verifier):
    """A fitted verifier's trainable weights by name, copied (BatchNorm's running
    statistics move without a gradient, so they are left out)."""
    return {name: p.detach().cpu().clone()
            for name, p in verifier.net_.module_.named_parameters()}


def assert_same_weights(a, b, **tolerances):
    """Two fitted verifiers (or two :func:`module_weights`) hold the same trainable
    weights, within ``torch.testing.assert_close``'s tolerances or those given."""
    a = a if isinstance(a, dict) else module_weights(a)
    b = b if isinstance(b, dict) else module_weights(b)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name, **tolerances)


def assert_frozen(tuned, pretrained, pattern):
    """``tuned`` kept the weights of ``pretrained`` whose names match ``pattern``
    (``fnmatch``; some, not all) and moved every other one."""
    before, after = module_weights(pretrained), module_weights(tuned)
    kept = set(fnmatch.filter(before, pattern))
    assert kept and kept != before.keys()
    assert_same_weights({n: after[n] for n in kept}, {n: before[n] for n in kept})
    assert all(not torch.equal(after[n], before[n]) for n in before.keys() - kept)


def write_signature_folder(root, random_state, dpi=None, n_writers=4):
    """A generic <writer>/genuine|forged/ folder of ``n_writers`` synthetic writers, 4
    genuine and 3 forged images each (PNGs recording ``dpi`` if given)."""
    data = make_synthetic_signatures(n_writers=n_writers, n_genuine=4, n_forgeries=3,
                                     random_state=random_state)
    counts = {}
    for image, writer, genuine in zip(data.images, data.writer, data.genuine):
        folder = root / f"w{writer}" / ("genuine" if genuine else "forged")
        folder.mkdir(parents=True, exist_ok=True)
        n = counts[folder] = counts.get(folder, 0) + 1
        Image.fromarray(image).save(folder / f"{n}.png", **({"dpi": dpi} if dpi else {}))
    return root


def line_masks(horizontal, n, rng, size=(60, 90)):
    """``n`` ink masks of a few 2-pixel lines, all horizontal or all vertical: two
    "writers" a patch network can tell apart from any window."""
    masks = []
    for _ in range(n):
        mask = np.zeros(size, dtype=bool)
        for at in rng.choice(np.arange(5, min(size) - 5), 4, replace=False):
            if horizontal:
                mask[at:at + 2, 5:-5] = True
            else:
                mask[5:-5, at:at + 2] = True
        masks.append(mask)
    return masks


@contextmanager
def bench_script(name):
    """``bench/<name>.py`` imported as a module (``bench`` is no package), unloaded on exit."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"skseg_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="session")
def signature_pairs():
    """Preprocessed pairs of 32 synthetic writers, split 24 / 8 by writer.

    Held-out writers are what a verifier must generalise to, and many writers
    with few signatures each teach that better than the reverse. Forgeries are
    made twice as distinct as by default (``forgery_strength=2``) so that a
    15-second CPU training shows a clear effect.

    Returns a dict with ``X_train, y_train, groups_train, X_test, y_test``
    (canvases), and ``raw_pairs, y, groups`` (all pairs, unpreprocessed).
    """
    data = make_synthetic_signatures(
        n_writers=32, n_genuine=6, n_forgeries=6, forgery_strength=2.0, random_state=0
    )
    pairs, y, groups = make_pairs(data, random_state=0)
    # Plain arrays, the input every array-like test needs; tests/test_size_term.py
    # adds ink sizes where it needs them.
    X = SignaturePreprocessor(canvas_size=CANVAS, compact_pairs=False).transform(pairs)
    test = np.isin(groups, np.unique(groups)[-8:])
    return {
        "raw_pairs": pairs,
        "y": y,
        "groups": groups,
        "X_train": X[~test],
        "y_train": y[~test],
        "groups_train": groups[~test],
        "X_test": X[test],
        "y_test": y[test],
    }


@pytest.fixture(scope="session")
def fitted_verifier(signature_pairs):
    """A verifier trained briefly: enough for API tests, not for accuracy."""
    return SiameseVerifier(max_epochs=2, random_state=0).fit(
        signature_pairs["X_train"], signature_pairs["y_train"]
    )
