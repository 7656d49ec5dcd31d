"""Pair input: validation, deduplication and the compact PairedCanvases."""

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.utils import _safe_indexing

from skseg import PairedCanvases, SiameseVerifier
from skseg._pairs import as_bank, deduplicate, to_canvases


def _bank(n=5, size=(6, 8)):
    return np.random.default_rng(0).integers(0, 256, (n, *size), dtype=np.uint8)


def test_deduplicate_keeps_first_appearance_order():
    bank = _bank(3)
    images = bank[[2, 0, 2, 1, 0]]
    unique, index = deduplicate(images)
    np.testing.assert_array_equal(unique, bank[[2, 0, 1]])
    np.testing.assert_array_equal(index, [0, 1, 0, 2, 1])


def test_as_bank_of_an_array_folds_identical_images():
    bank = _bank(4)
    index = np.array([[0, 1], [0, 2], [3, 1], [0, 1]])
    images, found = as_bank(bank[index])
    assert len(images) == 4
    np.testing.assert_array_equal(images[found], bank[index])


def test_paired_canvases_behave_like_their_array():
    bank = _bank(4)
    index = np.array([[0, 1], [0, 2], [3, 1]])
    pairs = PairedCanvases(bank, index)
    dense = bank[index]
    assert pairs.shape == dense.shape and len(pairs) == 3
    np.testing.assert_array_equal(np.asarray(pairs), dense)
    np.testing.assert_array_equal(pairs[1], dense[1])
    sub = _safe_indexing(pairs, np.array([2, 0]))
    assert isinstance(sub, PairedCanvases) and sub.images is bank
    np.testing.assert_array_equal(np.asarray(sub), dense[[2, 0]])
    np.testing.assert_array_equal(np.asarray(pairs[np.array([True, False, True])]), dense[[0, 2]])
    assert "3 pairs" in repr(pairs)


@pytest.mark.parametrize(
    "images, index, match",
    [
        (np.zeros((2, 4, 4), np.float32), [[0, 1]], "images must be a uint8 array"),
        (np.zeros((2, 4), np.uint8), [[0, 1]], "images must be a uint8 array"),
        (np.zeros((2, 4, 4), np.uint8), [[0, 1, 1]],
         r"index must be an integer array of shape \(n_pairs, 2\)"),
        (np.zeros((2, 4, 4), np.uint8), [[0, 1], [1, 2]], "pair 1 refers to image"),
    ],
)
def test_paired_canvases_bad_input(images, index, match):
    with pytest.raises(ValueError, match=match):
        PairedCanvases(images, index)


def test_to_canvases_converts_float_and_int():
    X = np.linspace(0, 1, 2 * 2 * 3 * 3).reshape(2, 2, 3, 3)
    out = to_canvases(X)
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0
    out = to_canvases((X * 255).round().astype(np.int32))
    assert out.dtype == np.uint8


def test_int_out_of_range_is_named():
    X = np.zeros((3, 2, 4, 4), dtype=np.int64)
    X[2, 0, 0, 0] = 300
    with pytest.raises(ValueError, match=r"pair 2 has values in \[0, 300\]"):
        to_canvases(X)


def test_bool_and_complex_are_refused():
    with pytest.raises(TypeError, match="uint8, another integer type or float"):
        to_canvases(np.zeros((1, 2, 4, 4), dtype=bool))
    with pytest.raises(TypeError, match="uint8, another integer type or float"):
        to_canvases(np.zeros((1, 2, 4, 4), dtype=complex))


def test_verifier_gives_the_same_model_on_paired_canvases(signature_pairs):
    X, y = signature_pairs["X_train"], signature_pairs["y_train"]
    bank, index = as_bank(X)
    compact = PairedCanvases(bank, index)
    a = SiameseVerifier(max_epochs=1, random_state=0).fit(X, y)
    b = SiameseVerifier(max_epochs=1, random_state=0).fit(compact, y)
    # Equal up to float rounding: CPU kernels may round differently for other batch layouts.
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(compact), atol=1e-5)


def test_cross_validation_on_paired_canvases(signature_pairs):
    X, y = signature_pairs["X_train"], signature_pairs["y_train"]
    groups = signature_pairs["groups_train"]
    compact = PairedCanvases(*as_bank(X))
    scores = cross_val_score(SiameseVerifier(max_epochs=1, random_state=0), compact, y,
                             groups=groups, cv=GroupKFold(2), scoring="roc_auc")
    assert np.isfinite(scores).all()


def test_as_bank_drops_images_no_pair_uses():
    bank = _bank(6)
    images, index = as_bank(PairedCanvases(bank, [[4, 1], [1, 5]]))
    assert len(images) == 3
    np.testing.assert_array_equal(images[index], bank[[[4, 1], [1, 5]]])


def test_preprocessor_compact_pairs_feed_the_verifier(signature_pairs):
    from sklearn.pipeline import make_pipeline

    from skseg import SignaturePreprocessor

    from .conftest import CANVAS

    raw, y = signature_pairs["raw_pairs"][:120], signature_pairs["y"][:120]
    dense = SignaturePreprocessor(canvas_size=CANVAS, compact_pairs=False).transform(raw)
    compact = SignaturePreprocessor(canvas_size=CANVAS, compact_pairs=True).transform(raw)
    assert isinstance(compact, PairedCanvases)
    assert len(compact.images) < 2 * len(raw)  # each distinct scan once
    np.testing.assert_array_equal(np.asarray(compact), dense)
    singles = SignaturePreprocessor(canvas_size=CANVAS, compact_pairs=True).transform(raw[:3, 0])
    assert isinstance(singles, np.ndarray) and singles.shape == (3, *CANVAS)
    pipe = make_pipeline(SignaturePreprocessor(canvas_size=CANVAS, compact_pairs=True),
                         SiameseVerifier(max_epochs=1, random_state=0)).fit(raw, y)
    assert pipe.predict(raw[:5]).shape == (5,)
