"""Stroke descriptors: what they describe, how the preprocessor carries them, and the
boosted trees that read their differences."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from skseg import PairedCanvases, SignaturePreprocessor
from skseg._boosting import BoostedTrees, fit_boosted_trees
from skseg._pairs import stroke_differences
from skseg.strokes import N_STROKE_FEATURES, STROKE_PARTS, stroke_descriptor


def _stroke(height, width, margin=0, thickness=3):
    """A white scan with one dark diagonal stroke, ``margin`` of paper around it."""
    scan = np.full((height + 2 * margin, width + 2 * margin), 245, dtype=np.uint8)
    for x in range(width):
        y = margin + x * (height - thickness) // width
        scan[y : y + thickness, margin + x] = 30
    return scan


def _descriptor(scan):
    return SignaturePreprocessor().transform_with_cues([scan])[2][0]


def _part(row, name):
    start = sum(list(STROKE_PARTS.values())[: list(STROKE_PARTS).index(name)])
    return row[start : start + STROKE_PARTS[name]]


def test_descriptor_parts_and_what_they_are_invariant_to():
    row = _descriptor(_stroke(40, 120))
    assert row.shape == (N_STROKE_FEATURES,) == (650,) and np.isfinite(row).all()
    # The histograms sum to 1: the density grid and the ink patterns.
    assert _part(row, "3 x 3 ink patterns").sum() == pytest.approx(1.0)
    assert _part(row, "density grid 4 x 8").sum() == pytest.approx(1.0)
    # Cropped to the ink: a wider margin of paper changes nothing.
    np.testing.assert_allclose(_descriptor(_stroke(40, 120, margin=50)), row)
    # Its box: the first two numbers are the log height and width of the ink.
    assert np.exp(row[:2]) == pytest.approx([40, 120], abs=2)
    # Another stroke tells: a steeper line has another slant and box ...
    assert not np.allclose(_descriptor(_stroke(80, 60)), row)
    # ... and a wider pen wider strokes (the median ridge width, log1p).
    widths = _part(row, "stroke widths and roughness")
    wide = _part(_descriptor(_stroke(40, 120, thickness=7)), "stroke widths and roughness")
    assert wide[1] > widths[1] + 0.4


def test_the_descriptor_reads_the_mask_not_the_grey_levels():
    dark = _stroke(40, 120, margin=10)
    light = np.where(dark < 128, 90, 200).astype(np.uint8)  # fainter ink on greyer paper
    np.testing.assert_array_equal(_descriptor(light), _descriptor(dark))


def test_no_ink_is_missing_and_a_bad_mask_is_refused():
    assert np.isnan(stroke_descriptor(None)).all()
    with pytest.raises(ValueError, match=r"2-D mask with some ink.*shape \(4, 5\) with 0 ink"):
        stroke_descriptor(np.zeros((4, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        stroke_descriptor(np.ones(3, dtype=bool))


def test_pairs_carry_the_descriptors_and_blank_images_are_nan():
    prep = SignaturePreprocessor(canvas_size=(32, 64), on_blank="ignore")
    blank = np.full((30, 50), 240, dtype=np.uint8)
    scan, other = _stroke(40, 120), _stroke(80, 60)
    pairs = prep.transform([[scan, other], [scan, blank]])
    assert pairs.strokes.shape == (3, N_STROKE_FEATURES)
    assert "with sizes and strokes" in repr(pairs)
    difference = stroke_differences(pairs)
    np.testing.assert_allclose(difference[0], np.abs(_descriptor(scan) - _descriptor(other)))
    assert np.isnan(difference[1]).all()
    # Indexing keeps them; per item, transform_with_cues lays them out like the sizes.
    assert pairs[[1]].strokes is pairs.strokes
    canvases, sizes, strokes = prep.transform_with_cues([[scan, other], [scan, blank]])
    assert canvases.shape == (2, 2, 32, 64) and sizes.shape == (2, 2, 2)
    np.testing.assert_array_equal(strokes, pairs.strokes[pairs.index])
    # Not asked for: none, and none carried.
    off = prep.set_params(stroke_descriptors=False)
    assert off.transform([[scan, other]]).strokes is None
    assert off.transform_with_cues([scan])[2] is None
    assert stroke_differences(off.transform([[scan, other]])) is None
    assert stroke_differences(np.asarray(pairs)) is None


def test_descriptors_are_the_same_in_worker_processes():
    scans = [_stroke(40, 120), _stroke(80, 60), _stroke(30, 90, thickness=5)]
    one = SignaturePreprocessor().transform_with_cues(scans)[2]
    two = SignaturePreprocessor(n_jobs=2).transform_with_cues(scans)[2]
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("strokes, match", [
    (np.zeros((2, 5)), r"strokes must have shape \(n_images, n_features\).*of the 3; got \(2, 5\)"),
    (np.zeros(3), r"got \(3,\)"),
])
def test_bad_strokes_are_refused(strokes, match):
    with pytest.raises(ValueError, match=match):
        PairedCanvases(np.zeros((3, 4, 5), np.uint8), [[0, 1]], strokes=strokes)


def test_boosted_trees_score_exactly_as_the_classifier():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12))
    y = (X[:, 0] + X[:, 3] * X[:, 5] + rng.normal(0, 0.5, 3000) > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values go one way at each split
    model = HistGradientBoostingClassifier(max_iter=40, learning_rate=0.1, random_state=0)
    model.fit(X, y)
    trees = BoostedTrees.from_classifier(model)
    X_new = rng.normal(size=(5000, 12))
    X_new[rng.random(X_new.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(trees.decision_function(X_new), model.decision_function(X_new))
    # Rebuilt from its arrays (as skseg.load does): the same scores.
    rebuilt = BoostedTrees(trees.as_arrays())
    np.testing.assert_array_equal(rebuilt.decision_function(X_new), model.decision_function(X_new))
    assert trees.n_trees == model.n_iter_


def test_boosted_trees_refuse_other_shapes_and_incomplete_arrays():
    rng = np.random.default_rng(0)
    trees = fit_boosted_trees(rng.normal(size=(200, 4)), rng.integers(0, 2, 200), random_state=0)
    with pytest.raises(ValueError, match=r"rows of 4 features; got shape \(3, 5\)"):
        trees.decision_function(np.zeros((3, 5)))
    arrays = trees.as_arrays()
    del arrays["value"]
    with pytest.raises(ValueError, match=r"lack \['value'\]"):
        BoostedTrees(arrays)
    multiclass = HistGradientBoostingClassifier(max_iter=2).fit(
        rng.normal(size=(90, 2)), np.repeat([0, 1, 2], 30))
    with pytest.raises(ValueError, match="binary"):
        BoostedTrees.from_classifier(multiclass)


def test_boosted_trees_take_other_settings():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
    assert fit_boosted_trees(X, y, random_state=0, max_iter=5).n_trees == 5
    stumps = fit_boosted_trees(X, y, random_state=0, max_depth=1, max_iter=3).as_arrays()
    assert stumps["is_leaf"].sum() == 2 * 3  # each tree one split, two leaves
