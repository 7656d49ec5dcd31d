"""bench/stroke_cues.py: the stroke descriptors, the classifier alone and the fused fold."""

import json

import numpy as np
import pytest

from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_synthetic_signatures
from skseg.datasets._pairs import _items_of
from skseg.evaluation import _pairs_of

from .conftest import bench_script, write_signature_folder

TINY = {"max_epochs": 2, "batch_size": 16}


@pytest.fixture(scope="module")
def stroke_cues():
    with bench_script("stroke_cues") as module:
        yield module


@pytest.fixture(scope="module")
def data():
    # Forgeries twice as distinct as by default, so that a few writers tell.
    return make_synthetic_signatures(n_writers=9, n_genuine=6, n_forgeries=6,
                                     forgery_strength=2, random_state=0)


@pytest.fixture(scope="module")
def rows(stroke_cues, data):
    return stroke_cues.descriptors(_items_of(data)[0])


@pytest.fixture(scope="module")
def training_pairs(data):
    """The data's SigNet pairs into the bank of all its canvases, and their labels."""
    items, writer, genuine = _items_of(data)
    canvases, sizes = SignaturePreprocessor().transform_with_sizes(items)
    pairs, y, _ = _pairs_of(np.arange(len(items)), writer, genuine, random_state=0)
    return PairedCanvases(canvases, np.asarray(pairs, dtype=np.int64), sizes), y


def _stroke(height, width, margin=0):
    """A white scan with one dark diagonal stroke, 3 pixels wide, ``margin`` around it."""
    scan = np.full((height + 2 * margin, width + 2 * margin), 245, dtype=np.uint8)
    for x in range(width):
        y = margin + x * (height - 3) // width
        scan[y : y + 3, margin + x] = 30
    return scan


def test_descriptor_parts_and_what_they_are_invariant_to(stroke_cues):
    row = stroke_cues.stroke_descriptor(stroke_cues.ink_mask(_stroke(40, 120)))
    assert row.shape == (stroke_cues.N_FEATURES,) == (sum(stroke_cues.PARTS.values()),)
    assert np.isfinite(row).all()
    # The last part, the ink-pattern histogram, sums to 1; so does the density grid.
    start = {name: sum(list(stroke_cues.PARTS.values())[:k])
             for k, name in enumerate(stroke_cues.PARTS)}
    patterns = row[start["3 x 3 ink patterns"]:]
    assert patterns.sum() == pytest.approx(1.0)
    grid = row[start["density grid 4 x 8"]:start["column and row profiles"]]
    assert grid.sum() == pytest.approx(1.0)
    # Cropped to the ink: a wider margin of paper changes nothing.
    wide = stroke_cues.stroke_descriptor(stroke_cues.ink_mask(_stroke(40, 120, margin=50)))
    np.testing.assert_allclose(wide, row)
    # Its box: the first two numbers are the log height and width of the ink.
    assert np.exp(row[:2]) == pytest.approx([40, 120], abs=2)
    # Another stroke tells: a steeper line has another slant and box.
    other = stroke_cues.stroke_descriptor(stroke_cues.ink_mask(_stroke(80, 60)))
    assert not np.allclose(other, row)


def test_flattening_finds_the_same_ink_on_uneven_paper(stroke_cues):
    scan = _stroke(40, 120, margin=20)
    shaded = scan.astype(float) * np.linspace(0.5, 1.0, scan.shape[1])  # darker to the left
    shaded = np.round(shaded).astype(np.uint8)
    flat = stroke_cues.ink_mask(shaded, flatten_background=True)
    # One threshold takes the dark side of the paper for ink; flattened, it finds the stroke.
    assert stroke_cues.ink_mask(shaded).shape[0] > flat.shape[0] + 20
    np.testing.assert_array_equal(flat, stroke_cues.ink_mask(scan, flatten_background=True))


def test_softening_blurs_the_scan_before_the_threshold(stroke_cues):
    scan = _stroke(40, 120, margin=20)
    sharp = stroke_cues.ink_mask(scan)
    soft = stroke_cues.ink_mask(scan, soften=2.0)
    # Same stroke in about the same box, its edges spread: another mask.
    assert not np.array_equal(soft, sharp)
    assert np.abs(np.subtract(soft.shape, sharp.shape)).max() <= 4


def test_an_image_without_ink_is_all_missing(stroke_cues):
    blank = np.full((30, 50), 240, dtype=np.uint8)
    assert stroke_cues.ink_mask(blank) is None
    rows = stroke_cues.descriptors([blank, _stroke(40, 120)])
    assert np.isnan(rows[0]).all() and np.isfinite(rows[1]).all()
    # The classifier takes the missing values: a pair with a blank image has NaN features.
    features = stroke_cues.pair_features(rows, [[0, 1], [1, 1]])
    assert np.isnan(features[0]).all() and (features[1] == 0).all()


def test_descriptors_alone_tell_synthetic_forgeries(stroke_cues, data, rows):
    _, writer, genuine = _items_of(data)
    folds = stroke_cues.alone(rows, writer, genuine, n_splits=3)
    assert [f["fold"] for f in folds] == [0, 1, 2]
    # Chance is 50 %; the synthetic forgers change the shape, which the descriptors see.
    assert np.mean([f["eer_skilled"] for f in folds]) < 0.25
    assert np.mean([f["eer_random"] for f in folds]) < 0.25


def test_fused_fold_chooses_the_weight_on_validation_writers(stroke_cues, data, rows):
    result = stroke_cues.fused_fold(data, rows, fold=0, n_splits=3, verifier_params=TINY)
    assert result["weight"] in stroke_cues.WEIGHTS
    validation = result["validation_eer"]
    # The chosen weight is the best on the validation writers, the verifier alone
    # (weight 0) among the candidates.
    assert validation["fused"] <= validation["network"] + 1e-12
    for name in ("network", "descriptors", "fused"):
        assert 0 <= result[name]["eer_skilled"] <= 1
    if result["weight"] == 0:
        assert result["fused"] == result["network"]


def test_fused_decision_is_the_network_less_the_weighted_cue(stroke_cues, rows,
                                                             training_pairs):
    records = {}
    verifier = stroke_cues.stroke_cue_verifier(rows, records)(random_state=0, **TINY)
    X, y = training_pairs
    verifier.fit(X, y)
    decision = verifier.decision_function(X)
    network = SiameseVerifier._distances(verifier, X)
    cue = verifier.cue_.decision_function(stroke_cues.pair_features(rows, X.index))
    np.testing.assert_allclose(decision, verifier.threshold_ - (network - verifier.weight_ * cue))
    np.testing.assert_allclose(records["test"]["descriptors"], cue)
    assert verifier.validation_eer_ == records["validation"]["fused"]


def test_pairs_into_another_bank_are_refused(stroke_cues, rows, training_pairs):
    verifier = stroke_cues.stroke_cue_verifier(rows[:-1], {})(random_state=0, **TINY)
    with pytest.raises(ValueError, match=f"{len(rows) - 1} descriptor rows"):
        verifier.fit(*training_pairs)


def test_main_writes_the_descriptors_alone(stroke_cues, tmp_path, capsys):
    folder = write_signature_folder(tmp_path / "data", random_state=1, n_writers=5)
    out = tmp_path / "strokes.json"
    stroke_cues.main([str(folder), "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["n_images"] == 5 * 7 and len(written["alone"]) == 5
    assert "descriptors alone" in capsys.readouterr().out
