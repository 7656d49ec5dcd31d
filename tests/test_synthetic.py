"""Tests of skseg.datasets.make_synthetic_signatures."""

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skseg.datasets import make_pairs, make_synthetic_signatures


def ink_mask(image):
    """Pixels clearly darker than the paper (the median grey level)."""
    return image < np.median(image) - 40


def global_stats(image):
    """Per-image statistics that must not reveal the label."""
    ink = ink_mask(image)
    rows, cols = np.nonzero(ink)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    return [ink.sum(), image[ink].mean(), np.median(image), image.std(), height, width,
            width / height, ink.sum() / (height * width), *image.shape]


def cue_auc(images, genuine, writer):
    """ROC AUC of a logistic regression on global_stats, writer-independent."""
    X = np.array([global_stats(im) for im in images])
    model = make_pipeline(StandardScaler(), LogisticRegression())
    proba = cross_val_predict(model, X, genuine, groups=writer, cv=GroupKFold(5),
                              method="predict_proba")[:, 1]
    return roc_auc_score(genuine, proba)


def normalised(image, crop=True, shape=(32, 64)):
    """Ink intensity on a small grid (cropped to the ink), unit L2 norm."""
    ink = np.clip(np.median(image) - image.astype(np.float32), 0, None)
    if crop:
        rows, cols = np.nonzero(ink_mask(image))
        ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    small = np.asarray(Image.fromarray(ink).resize(shape[::-1], Image.Resampling.BILINEAR))
    return small / np.linalg.norm(small)


def pair_distance_auc(data, crop=True):
    """ROC AUC of minus the pixel distance between reference and questioned images."""
    pairs, y, _ = make_pairs(data, random_state=0)
    small = {id(im): normalised(im, crop) for im in data.images}
    distance = [np.linalg.norm(small[id(a)] - small[id(b)]) for a, b in pairs]
    return roc_auc_score(y, -np.array(distance))


@pytest.fixture(scope="module")
def data():
    return make_synthetic_signatures(n_writers=20, n_genuine=10, n_forgeries=10,
                                     random_state=0)


def test_structure(data):
    assert data.layout == "synthetic" and data.paths is None
    assert len(data.images) == len(data.writer) == len(data.genuine) == 400
    assert data.genuine.dtype == bool and data.genuine.sum() == 200
    assert list(data.writer[:20]) == ["0"] * 20 and data.writer[-1] == "19"
    assert list(data.genuine[:20]) == [True] * 10 + [False] * 10
    shapes = {im.shape for im in data.images}
    assert len(shapes) > 100  # sizes vary from image to image
    for im in data.images:
        assert im.dtype == np.uint8 and im.ndim == 2
        assert 100 <= im.shape[0] <= 140 and 200 <= im.shape[1] <= 280
        # Scan-like: light paper, dark ink, some but not too much of it.
        assert 185 < np.median(im) < 255 and im.min() < 130
        assert 0.01 < ink_mask(im).mean() < 0.3


def test_deterministic():
    a = make_synthetic_signatures(3, 2, 2, random_state=42)
    b = make_synthetic_signatures(3, 2, 2, random_state=np.random.RandomState(42))
    c = make_synthetic_signatures(3, 2, 2, random_state=43)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not any(x.shape == y.shape and np.array_equal(x, y)
                   for x, y in zip(a.images, c.images))
    # Writer i does not depend on how many writers are asked for.
    d = make_synthetic_signatures(2, 2, 2, random_state=42)
    assert all(np.array_equal(x, y) for x, y in zip(d.images, a.images[:8]))


def test_options():
    data = make_synthetic_signatures(2, 2, 0, image_size=(64, 96), random_state=0)
    assert len(data.images) == 4 and data.genuine.all()
    assert all(54 <= im.shape[0] <= 74 and 81 <= im.shape[1] <= 111 for im in data.images)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_writers=0), "'n_writers' parameter"),
    (dict(n_genuine=1), "'n_genuine' parameter .* range \\[2, inf\\)"),
    (dict(n_forgeries=-1), "'n_forgeries' parameter"),
    (dict(n_writers=2.5), "'n_writers' parameter"),
    (dict(forgery_strength=-0.1), "'forgery_strength' parameter"),
    (dict(random_state="x"), "'random_state' parameter"),
    (dict(image_size=(20, 40)), "image_size must be a \\(height, width\\) pair"),
    (dict(image_size=(120,)), "image_size must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic_signatures(**kwargs)


def test_no_trivial_cue(data):
    # Global image statistics (ink amount and darkness, paper grey, size and
    # shape of the ink) do not tell forgeries from genuine signatures...
    auc = cue_auc(data.images, data.genuine, data.writer)
    assert auc < 0.65, auc


def test_trivial_cue_detector_can_fail(data):
    # ...and the check above is able to see one: paper 15 grey levels darker
    # on forgeries (as in CEDAR's scans) is found.
    shifted = [im if g else np.clip(im.astype(int) - 15, 0, 255).astype(np.uint8)
               for im, g in zip(data.images, data.genuine)]
    assert cue_auc(shifted, data.genuine, data.writer) > 0.7


def test_learnable_but_not_trivial(data):
    # Comparing the handwriting with the writer's genuine sample works better
    # than chance even with a crude pixel distance, but is far from perfect.
    auc = pair_distance_auc(data)
    assert 0.7 < auc < 0.92, auc
    # Without cropping to the ink, placement noise hides it: nothing is given
    # away by where or how large the signature is.
    assert pair_distance_auc(data, crop=False) < 0.6


def test_forgery_strength():
    easy = make_synthetic_signatures(8, 6, 6, forgery_strength=2.0, random_state=1)
    none = make_synthetic_signatures(8, 6, 6, forgery_strength=0.0, random_state=1)
    assert pair_distance_auc(easy) > 0.8
    assert abs(pair_distance_auc(none) - 0.5) < 0.1
