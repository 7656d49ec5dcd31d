"""SiameseVerifier: learning, labels, thresholds, probabilities, bad input."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from skseg import SiameseVerifier
from skseg._pairs import as_bank
from skseg.metrics import equal_error_rate, far_frr
from skseg.nn import PairBatches, PairDataset

from .conftest import TinyBackbone

# ROC AUC on 8 held-out synthetic writers that each loss must beat after 15
# epochs on 24 writers (a few seconds to a minute on 2 cores). Chance is 0.5;
# the raw pixel distance of the canvases reaches 0.77; measured on this data
# with batches of 64 images: contrastive 0.88, bce 0.89, triplet 0.85. (The
# default 128 gives these 288 images only 3 steps an epoch.)
MIN_HELD_OUT_AUC = 0.8


def _pixel_distance_auc(X, y):
    flat = X.reshape(len(X), 2, -1).astype(np.float64)
    return roc_auc_score(y, -np.linalg.norm(flat[:, 0] - flat[:, 1], axis=1))


@pytest.mark.slow
@pytest.mark.parametrize("loss, margin", [("contrastive", 1.0), ("triplet", 0.5), ("bce", 1.0)])
def test_each_loss_separates_held_out_writers(signature_pairs, loss, margin):
    d = signature_pairs
    clf = SiameseVerifier(loss=loss, margin=margin, max_epochs=15, batch_size=64, random_state=0)
    clf.fit(d["X_train"], d["y_train"])
    decision = clf.decision_function(d["X_test"])
    auc = roc_auc_score(d["y_test"], decision)
    baseline = _pixel_distance_auc(d["X_test"], d["y_test"])
    assert auc > MIN_HELD_OUT_AUC, f"{loss}: held-out AUC {auc:.3f}"
    assert auc > baseline + 0.05, f"{loss}: AUC {auc:.3f} vs pixel distance {baseline:.3f}"
    eer, _ = equal_error_rate(d["y_test"], decision)
    assert eer < 0.3, f"{loss}: held-out EER {eer:.3f}"


def test_outputs_are_consistent(fitted_verifier, signature_pairs):
    X = signature_pairs["X_test"]
    decision = fitted_verifier.decision_function(X)
    proba = fitted_verifier.predict_proba(X)
    predicted = fitted_verifier.predict(X)
    assert decision.shape == (len(X),)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba[:, 1] >= 0.5, decision >= 0)
    np.testing.assert_array_equal(predicted, fitted_verifier.classes_[(decision >= 0).astype(int)])
    assert fitted_verifier.proba_scale_ > 0


def test_string_labels_and_genuine_is_the_larger_label(signature_pairs):
    d = signature_pairs
    y = np.where(d["y_train"] == 1, "genuine", "forged")
    clf = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], y)
    assert clf.classes_.tolist() == ["forged", "genuine"]
    assert set(clf.predict(d["X_test"])) <= {"forged", "genuine"}
    # decision_function is oriented towards classes_[1] = "genuine".
    clf01 = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], d["y_train"])
    np.testing.assert_allclose(
        clf.decision_function(d["X_test"]), clf01.decision_function(d["X_test"]), rtol=1e-5
    )


def test_minus_one_plus_one_labels(signature_pairs):
    d = signature_pairs
    y = np.where(d["y_train"] == 1, 1, -1)
    clf = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], y)
    assert clf.classes_.tolist() == [-1, 1]


def test_random_state_reproduces_the_model(signature_pairs):
    d = signature_pairs
    a = SiameseVerifier(max_epochs=1, random_state=3).fit(d["X_train"], d["y_train"])
    b = SiameseVerifier(max_epochs=1, random_state=3).fit(d["X_train"], d["y_train"])
    np.testing.assert_array_equal(a.decision_function(d["X_test"]),
                                  b.decision_function(d["X_test"]))
    assert a.threshold_ == b.threshold_


def test_float_canvases_match_uint8(fitted_verifier, signature_pairs):
    X = signature_pairs["X_test"][:20]
    np.testing.assert_allclose(
        fitted_verifier.decision_function(X.astype(np.float32) / 255),
        fitted_verifier.decision_function(X),
        rtol=1e-6,
    )


def test_duplicated_pairs_cost_nothing_extra(fitted_verifier, signature_pairs, monkeypatch):
    """Prediction embeds each unique image once, however many pairs share it."""
    X = signature_pairs["X_test"]
    seen = []
    original = fitted_verifier.net_.embed
    monkeypatch.setattr(fitted_verifier.net_, "embed",
                        lambda bank: seen.append(len(bank)) or original(bank))
    fitted_verifier.decision_function(np.concatenate([X, X, X]))
    n_unique = len(np.unique(X.reshape(-1, X.shape[-2] * X.shape[-1]), axis=0))
    assert seen == [n_unique]
    assert n_unique < len(X)  # images are shared between pairs


def test_embed_gives_one_vector_per_image(fitted_verifier, signature_pairs):
    images = signature_pairs["X_test"][:5, 0]
    emb = fitted_verifier.embed(images)
    # The global embedding (unit length), then the local map (unit length per position).
    channels, height, width = fitted_verifier.net_.module_.local_shape
    dim = fitted_verifier.embedding_dim
    assert emb.shape == (5, dim + channels * height * width)
    np.testing.assert_allclose(np.linalg.norm(emb[:, :dim], axis=1), 1.0, rtol=1e-5)
    local = emb[:, dim:].reshape(5, channels, height, width)
    np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1.0, rtol=1e-5)


def test_calibrate_threshold_with_a_far_target(fitted_verifier, signature_pairs):
    clf = clone(fitted_verifier).fit(signature_pairs["X_train"], signature_pairs["y_train"])
    X, y = signature_pairs["X_test"], signature_pairs["y_test"]
    clf.calibrate_threshold(X, y, strategy="far", target=0.05)
    far, _ = far_frr(y, clf.decision_function(X), 0.0)
    assert far <= 0.05
    assert clf.predict_proba(X).shape == (len(X), 2)
    clf.calibrate_threshold(X, y, strategy="eer")
    eer, _ = equal_error_rate(y, clf.decision_function(X))
    far, frr = far_frr(y, clf.decision_function(X), 0.0)
    assert abs((far + frr) / 2 - eer) < 0.05


def test_fixed_threshold(signature_pairs):
    clf = SiameseVerifier(max_epochs=1, threshold=0.7, random_state=0)
    clf.fit(signature_pairs["X_train"], signature_pairs["y_train"])
    assert clf.threshold_ == 0.7


@pytest.mark.parametrize("distance", ["cosine", "l1"])
def test_other_distances_train(signature_pairs, distance):
    d = signature_pairs
    clf = SiameseVerifier(distance=distance, max_epochs=1, random_state=0, augment=False)
    assert clf.fit(d["X_train"], d["y_train"]).decision_function(d["X_test"]).shape == (
        len(d["X_test"]),
    )


def test_signet_backbone_runs_on_its_canvas_size():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (6, 2, 155, 220), dtype=np.uint8)
    X[3:, 1] = X[:3, 0]
    y = np.array([1, 0, 1, 0, 1, 0])
    clf = SiameseVerifier(backbone="signet", max_epochs=1, validation_fraction=0, random_state=0)
    clf.fit(X, y)
    # SigNet's last map before its pooling is 3 x 5 at 155 x 220: 32 local features each.
    assert clf.net_.module_.local_shape == (32, 3, 5)
    assert clf.embed(X[:2, 0]).shape == (2, 128 + 32 * 3 * 5)


def test_custom_backbone_class_and_nested_skorch_params(signature_pairs):
    d = signature_pairs
    clf = SiameseVerifier(
        backbone=TinyBackbone, embedding_dim=8, max_epochs=1, random_state=0,
        optimizer__weight_decay=0.123,
    )
    clf.fit(d["X_train"], d["y_train"])
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 0.123
    assert clf.embed(d["X_test"][:2, 0]).shape == (2, 8)
    assert clf.get_params()["optimizer__weight_decay"] == 0.123
    assert clone(clf).get_params()["optimizer__weight_decay"] == 0.123


def test_verbose_reports_pairs_per_image_forward(signature_pairs, capsys):
    d = signature_pairs
    clf = SiameseVerifier(max_epochs=1, random_state=0, verbose=1).fit(d["X_train"], d["y_train"])
    assert "pairs/img" in capsys.readouterr().out
    # Each image forward serves several labelled pairs (a naive loop: 0.5).
    assert clf.net_.history[-1]["pairs/img"] > 1.0


def test_pack_pieces_keeps_each_piece_whole():
    from skseg.nn.batching import pack_pieces

    pieces = [np.arange(3), np.arange(3, 8), np.arange(8, 9), np.arange(9, 20), np.arange(20, 22)]
    batches = pack_pieces(pieces, 8)
    # 3 + 5 fill a batch; 1 + 11 would not; a piece larger than a batch stays alone.
    assert [b.tolist() for b in batches] == [list(range(8)), [8], list(range(9, 20)), [20, 21]]


def test_progress_bar_counts_batches_of_images(signature_pairs):
    d = signature_pairs
    clf = SiameseVerifier(max_epochs=1, random_state=0, verbose=2).fit(d["X_train"], d["y_train"])
    bar = dict(clf.net_.callbacks_)["progress_bar"]
    # Training plus validation batches, not len(pairs) / batch_size.
    assert bar.batches_per_epoch == len(clf.net_.history[-1]["batches"])


def test_validation_split_keeps_writers_apart(signature_pairs):
    d = signature_pairs
    clf = SiameseVerifier(max_epochs=1, random_state=0)
    bank, index = as_bank(d["X_train"])
    target = d["y_train"].astype(np.float32)
    train, valid = clf._validation_split(index, target, len(bank), np.random.RandomState(0))
    assert len(valid) > 0
    assert not set(index[train].ravel()) & set(index[valid].ravel())
    train_writers = set(d["groups_train"][train])
    assert not train_writers & set(d["groups_train"][valid])


def test_batches_cover_every_pair_once_per_epoch():
    rng = np.random.default_rng(0)
    n_images = 60
    pairs = rng.integers(0, n_images, (400, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    target = rng.integers(0, 2, len(pairs)).astype(np.float32)
    images = torch.zeros((n_images, 4, 4), dtype=torch.uint8)
    batches = PairBatches(PairDataset(images, pairs, target), batch_size=16, shuffle=True,
                          random_state=0)
    for _ in range(2):
        used = []
        for X, y in batches:
            assert X["images"].shape[0] <= 16
            assert y["pairs"].max() < X["images"].shape[0]
            used.append(len(y["pairs"]))
        assert sum(used) == len(pairs)


def _writer_batches(**kwargs):
    """Two writers of 3 genuine images (0-2, 3-5) and one forgery each (6, 7),
    labelled as the SigNet protocol would, in one batch."""
    pairs = np.array([[0, 1], [1, 2], [3, 4], [4, 5], [0, 6], [3, 7]])
    target = np.array([1, 1, 1, 1, 0, 0], dtype=np.float32)
    images = torch.arange(8, dtype=torch.uint8)[:, None, None].expand(8, 4, 4).contiguous()
    return PairBatches(PairDataset(images, pairs, target), batch_size=8, **kwargs)


def _labelled_pairs(batches):
    """{(i, j): target} over one epoch, in bank positions (each image holds its position)."""
    (X, y), = list(batches)
    bank = X["images"][:, 0, 0][y["pairs"]].tolist()
    return {tuple(sorted(p)): t for p, t in zip(bank, y["target"].tolist())}


def test_implied_pairs_complete_each_writer():
    assert len(_labelled_pairs(_writer_batches())) == 6
    pairs = _labelled_pairs(_writer_batches(implied_pairs=True))
    genuine = {p for p, t in pairs.items() if t == 1}
    forged = {p for p, t in pairs.items() if t == 0}
    # All 3 genuine pairs of each writer; each forgery against all 3 of its writer's images.
    assert genuine == {(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)}
    assert forged == {(0, 6), (1, 6), (2, 6), (3, 7), (4, 7), (5, 7)}


def test_random_negatives_pair_genuine_images_of_different_writers():
    pairs = _labelled_pairs(_writer_batches(random_negatives=0.5, random_state=0))
    random = {p for p in pairs if p[0] < 3 <= p[1] < 6}
    assert len(random) == 2  # 0.5 per genuine pair, 4 labelled genuine pairs
    assert all(pairs[p] == 0 for p in random)
    # Never a forgery: one forger may have imitated several writers.
    assert not {p for p in pairs if p[1] >= 6} - {(0, 6), (3, 7)}
    everything = _labelled_pairs(_writer_batches(random_negatives=100.0, random_state=0))
    assert len({p for p in everything if p[0] < 3 <= p[1] < 6}) == 9


def test_implied_pairs_train_more_pairs_per_image(signature_pairs):
    d = signature_pairs
    plain = SiameseVerifier(max_epochs=1, batch_size=32, implied_pairs=False, random_negatives=0,
                            random_state=0)
    extra = clone(plain).set_params(implied_pairs=True, random_negatives=1.0)
    assert _pairs_per_image(plain.fit(d["X_train"], d["y_train"])) < _pairs_per_image(
        extra.fit(d["X_train"], d["y_train"]))


def _pairs_per_image(clf):
    return clf.net_.history[-1]["pairs/img"]


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "X_shape, match",
    [
        ((10, 3), r"shape \(n_pairs, 2, H, W\); got shape \(10, 3\)"),
        ((10, 3, 8, 8), r"got shape \(10, 3, 8, 8\)"),
        ((10, 8, 8), r"got shape \(10, 8, 8\)"),
        ((0, 2, 8, 8), "empty"),
    ],
)
def test_wrong_pair_shapes(X_shape, match):
    with pytest.raises(ValueError, match=match):
        SiameseVerifier().fit(np.zeros(X_shape, dtype=np.uint8), np.zeros(X_shape[0]))


def test_paths_instead_of_canvases_point_to_the_preprocessor():
    X = np.array([["a.png", "b.png"], ["c.png", "d.png"]], dtype=object)
    with pytest.raises(TypeError, match="SignaturePreprocessor"):
        SiameseVerifier().fit(X, [0, 1])


def _pairs(n=8, size=(32, 48)):
    return np.random.default_rng(0).integers(0, 256, (n, 2, *size), dtype=np.uint8)


def test_y_of_another_length():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SiameseVerifier().fit(_pairs(8), np.zeros(7))


@pytest.mark.parametrize("y, n", [([1] * 8, 1), ([0, 1, 2, 0, 1, 2, 0, 1], 3)])
def test_not_two_classes(y, n):
    with pytest.raises(ValueError, match=f"exactly two classes in y .*got {n}"):
        SiameseVerifier().fit(_pairs(8), y)


def test_nan_canvas_names_the_pair():
    X = _pairs(8).astype(np.float32) / 255
    X[5, 1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="pair 5 contains NaN"):
        SiameseVerifier().fit(X, [0, 1] * 4)


def test_float_out_of_range_names_the_pair():
    X = _pairs(8).astype(np.float64)  # 0..255 floats: not in [0, 1]
    X[0] = 0.5
    with pytest.raises(ValueError, match=r"pair 1 has values in .* must lie in \[0.0, 1.0\]"):
        SiameseVerifier().fit(X, [0, 1] * 4)


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        SiameseVerifier().predict(_pairs(2))


def test_other_canvas_size_at_predict_time(fitted_verifier):
    with pytest.raises(ValueError, match=r"fitted on \(64, 96\)"):
        fitted_verifier.predict(_pairs(2, size=(155, 220)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"loss": "hinge"}, "'loss' parameter"),
        ({"backbone": "resnet"}, "'backbone' parameter"),
        ({"distance": "mahalanobis"}, "'distance' parameter"),
        ({"margin": 0}, "'margin' parameter"),
        ({"margin": -1.0}, "'margin' parameter"),
        ({"threshold_strategy": "median"}, "'threshold_strategy' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"device": "tpu"}, "device='tpu' is not a torch device"),
        ({"module__": 1, "foo__bar": 2}, r"unexpected parameter\(s\) \['foo__bar'\]"),
    ],
)
def test_bad_parameters_are_named(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SiameseVerifier(**params).fit(_pairs(8), [0, 1] * 4)


def test_backbone_that_cannot_take_the_canvas_is_named():
    class Fixed(torch.nn.Module):
        def __init__(self, embedding_dim=4):
            super().__init__()
            self.fc = torch.nn.Linear(10, embedding_dim)

        def forward(self, x):
            return self.fc(x.flatten(1))

    with pytest.raises(ValueError, match="cannot process canvases of shape"):
        SiameseVerifier(backbone=Fixed, embedding_dim=4, validation_fraction=0).fit(
            _pairs(8), [0, 1] * 4
        )


def test_too_few_pairs_to_hold_out_warns():
    with pytest.warns(UserWarning, match=r"Too few pairs \(8\) to hold out 20%"):
        SiameseVerifier(max_epochs=1, random_state=0).fit(_pairs(8), [0, 1] * 4)


def test_calibrate_threshold_with_unknown_labels(fitted_verifier, signature_pairs):
    X = signature_pairs["X_test"][:4]
    with pytest.raises(ValueError, match="not one of classes_"):
        clone(fitted_verifier).fit(signature_pairs["X_train"], signature_pairs["y_train"]) \
            .calibrate_threshold(X, [0, 1, 2, 1])


def test_a_pickled_model_carries_no_training_canvas(signature_pairs):
    import pickle

    d = signature_pairs
    clf = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], d["y_train"])
    blob = pickle.dumps(clf)
    # A run of one canvas's rows with ink in it: it would appear in a stored bank.
    canvas = np.ascontiguousarray(d["X_train"][0, 1])
    rows = np.flatnonzero(canvas.any(axis=1))
    chunk = canvas[rows[0] : rows[0] + 8].tobytes()
    assert chunk not in blob
    # Weights and the optimizer's two moment buffers, and little else.
    n_params = sum(p.numel() for p in clf.net_.module_.parameters())
    assert len(blob) < 3 * 4 * n_params + 1_000_000


def test_embed_of_another_canvas_size(fitted_verifier):
    images = np.zeros((2, 155, 220), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"images have canvases of shape \(155, 220\)"
                                         r".*fitted on \(64, 96\)"):
        fitted_verifier.embed(images)


def test_random_affine_is_drawn_per_image_and_zero_jitter_is_identity():
    from skseg.nn.siamese import random_affine

    x = torch.rand(1, 1, 16, 24).repeat(3, 1, 1, 1)  # three copies of one image
    same = random_affine(x, max_degrees=0, max_scale=0, max_shift=0)
    torch.testing.assert_close(same, x)
    jittered = random_affine(x, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(jittered[0], jittered[1])


def test_random_affine_grid_is_an_affine_grid_within_its_bounds():
    from torch.nn import functional as F

    from skseg.nn.siamese import random_affine_grid

    shape = (64, 1, 15, 22)
    grid = random_affine_grid(shape, max_degrees=3.0, max_scale=0.05, max_shift=0.04,
                              generator=torch.Generator().manual_seed(0))
    assert grid.shape == (64, 15, 22, 2)
    # Recover each image's theta from its grid, then rebuild it with F.affine_grid.
    identity = F.affine_grid(torch.eye(2, 3).expand(1, 2, 3), [1, 1, 15, 22], align_corners=False)
    base = torch.cat([identity.reshape(-1, 2), torch.ones(15 * 22, 1)], dim=1)  # (x, y, 1)
    theta = torch.linalg.lstsq(base.expand(64, -1, -1), grid.reshape(64, -1, 2)).solution
    theta = theta.transpose(1, 2)  # (64, 2, 3)
    torch.testing.assert_close(F.affine_grid(theta, list(shape), align_corners=False), grid)
    # A rotation by at most 3 degrees, scaled by at most 5 %, shifted by at most 4 %
    # of the canvas (8 % in [-1, 1] units).
    linear = theta[:, :, :2]
    scale = 1 / torch.linalg.det(linear).sqrt()
    angle = torch.rad2deg(torch.atan2(linear[:, 1, 0], linear[:, 0, 0]))
    assert (scale - 1).abs().max() <= 0.05 + 1e-5 and angle.abs().max() <= 3 + 1e-4
    assert theta[:, :, 2].abs().max() <= 0.08 + 1e-6
    assert (scale - 1).abs().max() > 0.03 and angle.abs().max() > 2  # and it does jitter
