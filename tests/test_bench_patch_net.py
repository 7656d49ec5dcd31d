"""bench/patch_net.py: its masks, its cross-fitting and its report (the windows and the
network are skseg.patches', tested in tests/test_patches.py)."""

import json

import numpy as np
import pytest

from skseg import patches
from skseg.datasets import make_synthetic_signatures
from skseg.datasets._pairs import _items_of

from .conftest import bench_script, line_masks, write_signature_folder


@pytest.fixture(scope="module")
def patch_net():
    with bench_script("patch_net") as module:
        yield module


def test_the_network_is_the_packages(patch_net):
    for name in ("WINDOW", "train_patch_net", "embed_masks", "pair_distances"):
        assert getattr(patch_net, name) is getattr(patches, name)
    assert patch_net.PatchNet is patches.PatchNet and not hasattr(patch_net, "grid_windows")


def test_the_pair_trained_network_pulls_genuine_pairs_together(patch_net):
    # Two "writers": masks of horizontal lines and of vertical lines; genuine pairs
    # within a writer, forged pairs across.
    rng = np.random.default_rng(0)
    masks = line_masks(True, 8, rng) + line_masks(False, 8, rng)
    pairs = [(a, b) for a in range(16) for b in range(a + 1, 16)]
    target = [int((a < 8) == (b < 8)) for a, b in pairs]
    net = patch_net.train_pair_patch_net(masks, pairs, target, epochs=2, windows_per_image=256,
                                         windows_per_scan=4, pairs_per_batch=8, seed=0)
    assert isinstance(net, patches.PatchNet) and not net.training
    rows = patch_net.embed_masks(net, masks)
    distance = patch_net.pair_distances(rows, pairs)
    target = np.array(target, dtype=bool)
    assert distance[target].max() < distance[~target].min()


def test_at_ink_height_brings_the_reference_masks_median_to_the_height(patch_net):
    masks = [np.ones((h, 3 * h), dtype=bool) for h in (60, 80, 100, 400)] + [None]
    resized = patch_net.at_ink_height(masks, [0, 1, 2, 4], 40)  # the median of 60, 80, 100
    assert [m.shape for m in resized[:4]] == [(30, 90), (40, 120), (50, 150), (200, 600)]
    assert resized[4] is None and all(m.dtype == np.float32 for m in resized[:4])
    half = np.zeros((80, 80), dtype=bool)
    half[:, ::2] = True  # one column in two: box-averaged, half ink (to 8 bits) everywhere
    assert np.allclose(patch_net.at_ink_height([half], [0], 40)[0], 0.5, atol=1 / 255)


def test_no_training_pair_is_scored_by_a_network_that_saw_its_writer(patch_net, monkeypatch):
    data = make_synthetic_signatures(n_writers=6, n_genuine=3, n_forgeries=2, random_state=0)
    items, writer, genuine = _items_of(data)
    writer, genuine = np.asarray(writer), np.asarray(genuine)
    masks, rows = patch_net.masks_and_descriptors(items, n_jobs=1)
    trained, embedded = [], []
    train_patch_net, embed_masks = patch_net.train_patch_net, patch_net.embed_masks

    def recording_train(masks, labels, **kwargs):
        trained.append({id(m) for m in masks})
        return train_patch_net(masks, labels, **{**kwargs, "epochs": 1})

    def recording_embed(net, masks, **kwargs):
        embedded.append({id(m) for m in masks})
        assert kwargs == {"seed": 0}  # one generator through the masks: bench results kept
        return embed_masks(net, masks, **kwargs)

    monkeypatch.setattr(patch_net, "train_patch_net", recording_train)
    monkeypatch.setattr(patch_net, "embed_masks", recording_embed)
    positions = np.arange(len(items))
    tested = np.isin(writer, np.unique(writer)[-2:])  # two writers, so random forgeries too
    train, test = positions[~tested], positions[tested]
    fold = patch_net.evaluate_fold(masks, rows, writer, genuine, train, test)
    assert len(trained) == len(embedded) == 2
    for seen, scored in zip(trained, embedded):
        assert seen and not seen & scored
    # One class per writer: each network sees its half's genuine scans, labelled by writer.
    by_writer = []

    def recording_writer_train(masks, labels, **kwargs):
        by_writer.append(({id(m) for m in masks}, set(labels)))
        return train_patch_net(masks, labels, **{**kwargs, "epochs": 1})

    monkeypatch.setattr(patch_net, "train_patch_net", recording_writer_train)
    patch_net.evaluate_fold(masks, rows, writer, genuine, train, test, objective="writers")
    ids_of = {id(m): i for i, m in enumerate(masks)}
    for (seen, labels), own in zip(by_writer, trained):
        assert seen == {i for i in own if genuine[ids_of[i]]}
        assert labels == {str(writer[ids_of[i]]) for i in seen}
    # Trained on pairs, each network sees only its own half's pairs too.
    train_pair_patch_net, pair_trained = patch_net.train_pair_patch_net, []

    def recording_pair_train(masks, pairs, target, **kwargs):
        pair_trained.append({id(masks[i]) for i in np.ravel(pairs)})
        return train_pair_patch_net(masks, pairs, target, **{**kwargs, "epochs": 1})

    monkeypatch.setattr(patch_net, "train_pair_patch_net", recording_pair_train)
    embedded.clear()
    patch_net.evaluate_fold(masks, rows, writer, genuine, train, test, objective="pairs")
    assert len(pair_trained) == len(embedded) == 2
    for seen, scored, own in zip(pair_trained, embedded, trained):
        assert seen == own and not seen & scored
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
