"""bench/patch_net.py: the windows, the patch network, its cross-fitting and its report."""

import json

import numpy as np
import pytest

from skseg.datasets import make_synthetic_signatures
from skseg.datasets._pairs import _items_of

from .conftest import bench_script, write_signature_folder


@pytest.fixture(scope="module")
def patch_net():
    with bench_script("patch_net") as module:
        yield module


def _lines(horizontal, n, rng, size=(60, 90)):
    """``n`` masks of a few 2-pixel lines, all horizontal or all vertical."""
    masks = []
    for _ in range(n):
        mask = np.zeros(size, dtype=bool)
        for at in rng.choice(np.arange(5, min(size) - 5), 4, replace=False):
            if horizontal:
                mask[at : at + 2, 5:-5] = True
            else:
                mask[5:-5, at : at + 2] = True
        masks.append(mask)
    return masks


def test_random_windows_are_centred_on_ink(patch_net):
    mask = np.zeros((40, 70), dtype=bool)
    mask[3, 2] = mask[30, 65] = True  # near the edges: the windows are padded
    windows = patch_net.random_windows(mask, 20, np.random.default_rng(0))
    half = patch_net.WINDOW // 2
    assert windows.shape == (20, patch_net.WINDOW, patch_net.WINDOW)
    assert (windows[:, half, half] == 1).all()
    assert set(windows.sum(axis=(1, 2)).tolist()) == {1.0}


def test_grid_windows_hold_ink_and_are_capped(patch_net):
    rng = np.random.default_rng(0)
    full = np.ones((400, 600), dtype=bool)
    assert len(patch_net.grid_windows(full, rng)) == patch_net.MAX_WINDOWS
    dot = np.zeros((100, 100), dtype=bool)
    dot[50, 50] = True  # too little ink for any grid window: the window on the ink
    windows = patch_net.grid_windows(dot, rng)
    assert len(windows) == 1 and windows.sum() == 1


def test_at_ink_height_brings_the_reference_masks_median_to_the_height(patch_net):
    masks = [np.ones((h, 3 * h), dtype=bool) for h in (60, 80, 100, 400)] + [None]
    resized = patch_net.at_ink_height(masks, [0, 1, 2, 4], 40)  # the median of 60, 80, 100
    assert [m.shape for m in resized[:4]] == [(30, 90), (40, 120), (50, 150), (200, 600)]
    assert resized[4] is None and all(m.dtype == np.float32 for m in resized[:4])
    half = np.zeros((80, 80), dtype=bool)
    half[:, ::2] = True  # one column in two: box-averaged, half ink (to 8 bits) everywhere
    assert np.allclose(patch_net.at_ink_height([half], [0], 40)[0], 0.5, atol=1 / 255)


def test_the_network_learns_what_tells_its_classes_apart(patch_net):
    rng = np.random.default_rng(0)
    masks = _lines(True, 12, rng) + _lines(False, 12, rng)
    labels = np.repeat(["flat", "upright"], 12)
    net = patch_net.train_patch_net(masks, labels, epochs=4, windows_per_image=64, seed=0)
    centres = patch_net.embeddings(net, masks).reshape(2, 12, -1).mean(axis=1)
    new = _lines(True, 4, rng) + _lines(False, 4, rng)
    rows = patch_net.embeddings(net, new)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1)
    # New masks lie nearer their own class's centre than the other's.
    nearest = np.linalg.norm(rows[:, None] - centres[None], axis=2).argmin(axis=1)
    assert nearest.tolist() == [0] * 4 + [1] * 4
    # The distances between two such masks, more apart across the classes than within.
    same = patch_net.pair_distances(rows, [[0, 1], [2, 3], [4, 5], [6, 7]])
    other = patch_net.pair_distances(rows, [[0, 4], [1, 5], [2, 6], [3, 7]])
    assert same.mean() < other.mean() / 2


def test_a_scan_without_ink_has_no_embedding(patch_net):
    rng = np.random.default_rng(0)
    net = patch_net.train_patch_net(_lines(True, 2, rng), ["a", "b"], epochs=1, seed=0)
    rows = patch_net.embeddings(net, [None, _lines(True, 1, rng)[0]])
    assert np.isnan(rows[0]).all() and np.isfinite(rows[1]).all()


def test_no_training_pair_is_scored_by_a_network_that_saw_its_writer(patch_net, monkeypatch):
    data = make_synthetic_signatures(n_writers=6, n_genuine=3, n_forgeries=2, random_state=0)
    items, writer, genuine = _items_of(data)
    writer, genuine = np.asarray(writer), np.asarray(genuine)
    masks, rows = patch_net.masks_and_descriptors(items, n_jobs=1)
    trained, embedded = [], []
    train_patch_net, embeddings = patch_net.train_patch_net, patch_net.embeddings

    def recording_train(masks, labels, **kwargs):
        trained.append({id(m) for m in masks})
        return train_patch_net(masks, labels, **{**kwargs, "epochs": 1})

    def recording_embeddings(net, masks, seed=0):
        embedded.append({id(m) for m in masks})
        return embeddings(net, masks, seed)

    monkeypatch.setattr(patch_net, "train_patch_net", recording_train)
    monkeypatch.setattr(patch_net, "embeddings", recording_embeddings)
    positions = np.arange(len(items))
    tested = np.isin(writer, np.unique(writer)[-2:])  # two writers, so random forgeries too
    train, test = positions[~tested], positions[tested]
    fold = patch_net.evaluate_fold(masks, rows, writer, genuine, train, test)
    assert len(trained) == len(embedded) == 2
    for seen, scored in zip(trained, embedded):
        assert seen and not seen & scored
    assert {id(masks[i]) for i in test} <= embedded[0] & embedded[1]
    for name in ("patch alone", "descriptors alone", "descriptors and patch"):
        assert 0 <= fold[name]["eer_skilled"] <= 1 and 0 <= fold[name]["eer_random"] <= 1


def test_main_writes_each_folds_three_scores(patch_net, tmp_path, capsys):
    folder = write_signature_folder(tmp_path / "data", random_state=1, n_writers=6)
    out = tmp_path / "patch.json"
    patch_net.main([str(folder), "--epochs", "1", "--n-splits", "3", "--only-folds", "1",
                    "--ink-height", "48", "--n-jobs", "1", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["n_images"] == 6 * 7 and [f["fold"] for f in written["folds"]] == [1]
    assert written["ink_height"] == 48
    assert "patch alone" in written["folds"][0] and "fold 1" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be at least 1; got 0"),
    (["--only-folds", "5"], "--only-folds must lie in 0..4; got [5]"),
    (["--ink-height", "10"], "--ink-height must be at least the window, 32 px; got 10.0"),
])
def test_main_refuses_bad_options_before_reading_scans(patch_net, tmp_path, capsys,
                                                       args, message):
    with pytest.raises(SystemExit):
        patch_net.main([str(tmp_path / "missing"), *args])
    assert message in capsys.readouterr().err
