"""skseg.patches: the windows, the patch network, its embeddings and the classes
it trains on, read off labelled pairs."""

import numpy as np
import pytest
import torch

from skseg.datasets import make_pairs, make_synthetic_signatures
from skseg import patches
from skseg.patches import (AUGMENT_SOURCE, MAX_WINDOWS, WINDOW, PatchNet, embed_masks,
                           grid_windows, pair_classes, pair_distances, pool_windows,
                           random_windows, train_patch_net, warp_windows)

from .conftest import line_masks

#: The classes of the fixture's 12 flat and 12 upright line masks.
LINE_LABELS = np.repeat(["flat", "upright"], 12)


def _speckle(seed, shape=(300, 400)):
    """A large mask of scattered ink: more grid windows than ``MAX_WINDOWS``."""
    return np.random.default_rng(seed).random(shape) < 0.08


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return PatchNet(2).eval()


@pytest.fixture(scope="module")
def lines_net():
    """A network trained on flat and upright lines, and its training masks."""
    rng = np.random.default_rng(0)
    masks = line_masks(True, 12, rng) + line_masks(False, 12, rng)
    net = train_patch_net(masks, LINE_LABELS, epochs=4, windows_per_image=64, seed=0)
    return net, masks, rng


# Windows


def test_random_windows_are_centred_on_ink():
    mask = np.zeros((40, 70), dtype=bool)
    mask[3, 2] = mask[30, 65] = True  # near the edges: the windows are padded
    windows = random_windows(mask, 20, np.random.default_rng(0))
    half = WINDOW // 2
    assert windows.shape == (20, WINDOW, WINDOW) and windows.dtype == np.float32
    assert (windows[:, half, half] == 1).all()
    assert set(windows.sum(axis=(1, 2)).tolist()) == {1.0}
    # The same seed draws the same windows.
    again = random_windows(mask, 20, np.random.default_rng(0))
    np.testing.assert_array_equal(windows, again)


def test_grid_windows_hold_ink_and_are_capped():
    rng = np.random.default_rng(0)
    full = np.ones((400, 600), dtype=bool)
    assert grid_windows(full, rng).shape == (MAX_WINDOWS, WINDOW, WINDOW)
    dot = np.zeros((100, 100), dtype=bool)
    dot[50, 50] = True  # too little ink for any grid window: the window on the ink
    windows = grid_windows(dot, rng)
    assert len(windows) == 1 and windows.sum() == 1
    assert windows[0, WINDOW // 2, WINDOW // 2] == 1
    # Only the grid windows that hold ink: a mask inked in one corner.
    corner = np.zeros((64, 64), dtype=bool)
    corner[:16, :16] = True
    windows = grid_windows(corner, rng)
    assert 0 < len(windows) < 16 and (windows.mean(axis=(1, 2)) >= 0.03).all()


@pytest.mark.parametrize("n_ink, on_grid", [(31, True), (30, False)])
def test_grid_windows_keep_windows_of_at_least_3_percent_ink(n_ink, on_grid):
    # A 16 x 16 mask has one grid window, centred on (8, 8), that sees all of it:
    # kept from 31 ink pixels of its 1024 (3 %) on, else the window on the first ink.
    mask = np.zeros((16, 16), dtype=bool)
    mask.flat[:n_ink] = True  # rows 0 and 1, from (0, 0) on
    windows = grid_windows(mask, np.random.default_rng(0))
    assert len(windows) == 1 and windows.sum() == n_ink
    centre = windows[0, WINDOW // 2, WINDOW // 2]
    assert centre == (0 if on_grid else 1)  # mask[8, 8] has no ink, mask[0, 0] has


def test_random_windows_of_another_size_are_centred_too():
    mask = np.zeros((40, 70), dtype=bool)
    mask[20, 35] = True
    windows = random_windows(mask, 3, np.random.default_rng(0), size=AUGMENT_SOURCE)
    assert windows.shape == (3, AUGMENT_SOURCE, AUGMENT_SOURCE)
    assert (windows[:, AUGMENT_SOURCE // 2, AUGMENT_SOURCE // 2] == 1).all()


def test_warp_windows_without_any_warp_is_the_centre_cut(monkeypatch):
    windows = torch.from_numpy(
        np.random.default_rng(0).random((4, 1, AUGMENT_SOURCE, AUGMENT_SOURCE), dtype=np.float32))
    monkeypatch.setattr(patches, "_MAX_ANGLE", 0.0)
    monkeypatch.setattr(patches, "_MAX_SHEAR", 0.0)
    monkeypatch.setattr(patches, "_MAX_ZOOM", 1.0)
    start = (AUGMENT_SOURCE - WINDOW) // 2
    torch.testing.assert_close(warp_windows(windows, np.random.default_rng(0)),
                               windows[:, :, start:start + WINDOW, start:start + WINDOW])


def test_warp_windows_turn_strokes_about_the_centre_and_keep_them_inside():
    # A horizontal stroke through the centre, long enough to leave any cut.
    windows = torch.zeros(200, 1, AUGMENT_SOURCE, AUGMENT_SOURCE)
    windows[:, :, 31:33, :] = 1
    warped = warp_windows(windows, np.random.default_rng(0))
    assert warped.shape == (200, 1, WINDOW, WINDOW)
    assert warped.min() >= 0 and warped.max() <= 1
    # The centre stays inked: each window is warped about it.
    assert (warped[:, 0, 15:17, 15:17].amax(dim=(1, 2)) > 0.5).all()
    # The stroke is turned by various angles, never more than 15 degrees plus the
    # slant: its ends rise or fall, but it still crosses the window's sides.
    rows = torch.arange(WINDOW, dtype=torch.float32)
    left, right = warped[:, 0, :, 0], warped[:, 0, :, -1]
    height = ((right * rows).sum(1) / right.sum(1)) - ((left * rows).sum(1) / left.sum(1))
    assert (left.sum(1) > 0).all() and (right.sum(1) > 0).all()
    slope = np.degrees(np.arctan(height.numpy() / (WINDOW - 1)))
    assert np.abs(slope).max() <= 15 + 1 and slope.std() > 3
    # The same generator state warps alike.
    torch.testing.assert_close(warp_windows(windows, np.random.default_rng(0)), warped)


def test_warp_windows_refuses_windows_of_another_size():
    with pytest.raises(ValueError, match=f"must be {AUGMENT_SOURCE} x {AUGMENT_SOURCE} pixels; "
                                         f"got \\(32, 32\\)"):
        warp_windows(torch.zeros(2, 1, WINDOW, WINDOW), np.random.default_rng(0))


# Classes read off the pairs


def test_pair_classes_of_a_hand_made_pair_list():
    pairs = [
        (0, 1), (1, 2),  # writer A's genuine images 0, 1, 2
        (3, 4),  # writer B's 3, 4
        (12, 13),  # writer C's 12, 13, never forged
        (0, 5), (2, 5),  # 5 forges A
        (3, 6),  # 6 forges B
        (0, 7), (3, 7),  # 7 is paired with A and B: no class
        (8, 9),  # 8 and 9 only with each other, in no genuine pair: no class
        (0, 11), (11, 8),  # 11 forges A (8 is in no genuine pair)
        (1, 4),  # a random forgery: both stay genuine
    ]
    target = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    classes = pair_classes(pairs, target, 14)  # 10 is in no pair
    #                 0  1  2  3  4  5  6   7   8   9  10 11 12 13
    expected = [0, 0, 0, 2, 2, 1, 3, -1, -1, -1, -1, 1, 4, 4]
    assert classes.dtype == np.int64 and classes.tolist() == expected
    # Numbered by the components' first images, not by the order of the pairs.
    order = np.random.default_rng(0).permutation(len(pairs))
    swapped = np.array(pairs)[order][:, ::-1]
    classes = pair_classes(swapped, np.array(target, dtype=float)[order], 14)
    assert classes.tolist() == expected


def test_pair_classes_without_genuine_pairs_or_pairs():
    assert pair_classes([(0, 1)], [0], 3).tolist() == [-1, -1, -1]
    assert pair_classes(np.empty((0, 2), int), [], 2).tolist() == [-1, -1]


@pytest.mark.parametrize("pairs, target, message", [
    ([(0, 1), (1, 2)], [1], "pairs and target differ in length (2 and 1)"),
    ([(0, 3)], [1], "pair positions must lie in 0..2"),
])
def test_pair_classes_refuses_bad_pairs(pairs, target, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pair_classes(pairs, target, 3)


@pytest.mark.parametrize("kwargs", [
    {"n_forgeries_per_genuine_pair": 10.0, "random_forgeries": 1.0},  # every forgery
    {},  # a forgery's pairs drawn at random: some in no pair
])
def test_pair_classes_are_the_writers_genuine_and_forged_images(kwargs):
    data = make_synthetic_signatures(n_writers=5, n_genuine=4, n_forgeries=3,
                                     image_size=(40, 80), random_state=0)
    pairs, y, _ = make_pairs(data, random_state=0, **kwargs)
    position = {id(image): k for k, image in enumerate(data.images)}
    index = np.vectorize(lambda image: position[id(image)], otypes=[int])(pairs)
    classes = pair_classes(index, y, len(data.images))
    paired = np.isin(np.arange(len(classes)), index)
    assert ((classes >= 0) == paired).all()
    if "random_forgeries" in kwargs:
        assert paired.all()
    truth = np.char.add(data.writer.astype(str), np.where(data.genuine, "/g", "/f"))
    # Same class exactly when same writer and kind, classes 0 .. k - 1.
    same_class = classes[paired, None] == classes[None, paired]
    same_truth = truth[paired, None] == truth[None, paired]
    np.testing.assert_array_equal(same_class, same_truth)
    assert sorted(set(classes[paired])) == list(range(len(set(truth[paired]))))


# The network


def test_the_network_learns_what_tells_its_classes_apart(lines_net):
    net, masks, rng = lines_net
    assert isinstance(net, PatchNet) and not net.training
    centres = embed_masks(net, masks).reshape(2, 12, -1).mean(axis=1)
    new = line_masks(True, 4, rng) + line_masks(False, 4, rng)
    rows = embed_masks(net, new)
    # New masks lie nearer their own class's centre than the other's.
    nearest = np.linalg.norm(rows[:, None] - centres[None], axis=2).argmin(axis=1)
    assert nearest.tolist() == [0] * 4 + [1] * 4
    # The distances between two such masks, more apart across the classes than within.
    same = pair_distances(rows, [[0, 1], [2, 3], [4, 5], [6, 7]])
    other = pair_distances(rows, [[0, 4], [1, 5], [2, 6], [3, 7]])
    assert same.mean() < other.mean() / 2
    # The head tells the training masks' windows apart.
    windows = torch.from_numpy(np.concatenate(
        [random_windows(m, 8, np.random.default_rng(1)) for m in masks]))[:, None]
    with torch.no_grad():
        predicted = net(windows).argmax(1).numpy()
    assert (predicted == np.repeat([0, 1], 12 * 8)).mean() > 0.9


def test_training_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    masks = line_masks(True, 3, rng) + line_masks(False, 3, rng)
    labels = [2, 2, 2, 7, 7, 7]  # any sortable labels

    def weights(seed):
        net = train_patch_net(masks, labels, epochs=1, windows_per_image=16, seed=seed,
                              device=torch.device("cpu"))
        assert net.head.out_features == 2
        return {name: p.detach().clone() for name, p in net.state_dict().items()}

    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not torch.equal(first["head.weight"], other["head.weight"])


def test_augmented_training_learns_too_and_is_deterministic(lines_net):
    # Lines turned by at most 15 degrees stay flat or upright: still told apart.
    plain, masks, _ = lines_net  # the same training without augmentation

    def trained():
        return train_patch_net(masks, LINE_LABELS, epochs=4, windows_per_image=64, augment=True,
                               seed=0)

    net, again = trained(), trained()
    for name, weight in net.state_dict().items():
        assert torch.equal(weight, again.state_dict()[name])
    assert not torch.equal(net.head.weight, plain.head.weight)
    rng = np.random.default_rng(1)
    rows = embed_masks(net, line_masks(True, 4, rng) + line_masks(False, 4, rng))
    same = pair_distances(rows, [[0, 1], [2, 3], [4, 5], [6, 7]])
    other = pair_distances(rows, [[0, 4], [1, 5], [2, 6], [3, 7]])
    assert same.mean() < other.mean() / 2


@pytest.mark.parametrize("masks, labels, message", [
    ([np.ones((8, 8))] * 3, ["a", "a", "a"], "at least 2 distinct labels; got 1"),
    ([np.ones((8, 8))] * 3, ["a", "b"], "masks and labels differ in length (3 and 2)"),
    ([np.ones((8, 8)), np.ones((8, 8)), None], ["a", "b", "a"],
     "the mask at position 2 has no ink (None)"),
    ([np.ones((8, 8)), np.zeros((8, 8)), np.ones((8, 8))], ["a", "b", "a"],
     "the mask at position 1 has no ink (all zero)"),
])
def test_train_patch_net_refuses_what_it_cannot_learn_from(masks, labels, message):
    with pytest.raises(ValueError) as error:
        train_patch_net(masks, labels, epochs=1)
    assert message in str(error.value)


# Embeddings


def test_pool_windows_pools_each_scan_alone():
    torch.manual_seed(0)
    embeddings = torch.randn(3, 2, 5, 4)  # 3 pairs x 2 scans x 5 windows x 4 features
    pooled = pool_windows(embeddings)
    assert pooled.shape == (3, 2, 4)
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(3, 2))
    one = embeddings[1, 0]
    expected = (one / one.norm(dim=1, keepdim=True)).mean(0)
    torch.testing.assert_close(pooled[1, 0], expected / expected.norm())
    torch.testing.assert_close(pool_windows(one), pooled[1, 0])


def test_embeddings_are_unit_rows_and_nan_without_ink(untrained):
    rng = np.random.default_rng(0)
    masks = [None, line_masks(True, 1, rng)[0], np.zeros((20, 20), bool), _speckle(0)]
    for seed in (None, 3):
        rows = embed_masks(untrained, masks, seed=seed)
        assert rows.dtype == np.float64 and rows.shape == (4, untrained.head.in_features)
        assert np.isnan(rows[[0, 2]]).all() and np.isfinite(rows[[1, 3]]).all()
        np.testing.assert_allclose(np.linalg.norm(rows[[1, 3]], axis=1), 1, rtol=1e-6)
    assert np.isnan(pair_distances(rows, [[0, 1], [3, 2]])).all()
    np.testing.assert_allclose(pair_distances(rows, [[1, 3], [1, 1]]),
                               [np.linalg.norm(rows[1] - rows[3]), 0])


def test_a_masks_row_does_not_depend_on_its_company_without_a_seed(untrained):
    a, b = _speckle(1), _speckle(2)  # both more windows than kept: the draws matter
    alone = embed_masks(untrained, [a])
    with_b = embed_masks(untrained, [b, a])
    np.testing.assert_array_equal(alone[0], with_b[1])
    np.testing.assert_array_equal(embed_masks(untrained, [b])[0], with_b[0])
    # With a seed, one generator runs through the masks in order (the bench's way):
    # the first mask's row is the one without a seed, the next ones' depend on it.
    shared = embed_masks(untrained, [b, a], seed=0)
    np.testing.assert_array_equal(shared[0], with_b[0])
    assert not np.array_equal(shared[1], with_b[1])
    np.testing.assert_array_equal(embed_masks(untrained, [b, a], seed=0), shared)
