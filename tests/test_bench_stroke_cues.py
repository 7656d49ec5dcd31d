"""bench/stroke_cues.py: the ink masks of its two checks, and the descriptors alone."""

import json
import re

import numpy as np
import pytest

from skseg import SignaturePreprocessor
from skseg.datasets import make_synthetic_signatures
from skseg.datasets._pairs import _items_of
from skseg.strokes import stroke_descriptor

from .conftest import bench_script, write_signature_folder


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


def _stroke(height, width, margin=0):
    """A white scan with one dark diagonal stroke, 3 pixels wide, ``margin`` around it."""
    scan = np.full((height + 2 * margin, width + 2 * margin), 245, dtype=np.uint8)
    for x in range(width):
        y = margin + x * (height - 3) // width
        scan[y : y + 3, margin + x] = 30
    return scan


def test_the_mask_is_the_preprocessors(stroke_cues):
    # The same ink as SignaturePreprocessor finds: the same descriptor as it carries.
    scan = _stroke(40, 120, margin=20)
    _, _, strokes = SignaturePreprocessor().transform_with_cues([scan])
    np.testing.assert_array_equal(stroke_descriptor(stroke_cues.ink_mask(scan)), strokes[0])


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
    # The validation writers are training writers: another figure, also above chance.
    assert np.mean([f["validation_eer_skilled"] for f in folds]) < 0.4
    one_tree = stroke_cues.alone(rows, writer, genuine, n_splits=3, tree_params={"max_iter": 1})
    assert [f["eer_skilled"] for f in one_tree] != [f["eer_skilled"] for f in folds]


def test_main_writes_the_descriptors_alone(stroke_cues, tmp_path, capsys):
    folder = write_signature_folder(tmp_path / "data", random_state=1, n_writers=5)
    out = tmp_path / "strokes.json"
    stroke_cues.main([str(folder), "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["n_images"] == 5 * 7 and len(written["alone"]) == 5
    assert written["tree_params"] == {}
    printed = capsys.readouterr().out
    assert "descriptors alone" in printed and "validation writers: skilled" in printed
    assert all(0 <= f["validation_eer_skilled"] <= 1 for f in written["alone"])


def test_main_takes_tree_params_and_names_a_wrong_one(stroke_cues, tmp_path, capsys):
    folder = write_signature_folder(tmp_path / "data", random_state=1, n_writers=5)
    out = tmp_path / "strokes.json"
    stroke_cues.main([str(folder), "--tree-params", '{"max_leaf_nodes": 4}', "--out", str(out)])
    assert json.loads(out.read_text())["tree_params"] == {"max_leaf_nodes": 4}
    for text, message in (('{"max_leafs": 4}', r"\['max_leafs'\] are not settings"),
                          ('{"random_state": 1}', r"\['random_state'\] are not settings"),
                          ("[4]", "must be a JSON object"), ("{max", "is not JSON")):
        with pytest.raises(SystemExit):
            stroke_cues.main([str(folder), "--tree-params", text])
        assert re.search(message, capsys.readouterr().err)


def test_run_lengths_measure_strokes_and_the_paper_between_them(stroke_cues):
    ink = np.zeros((20, 40), dtype=bool)
    ink[2:5, 3:35] = True    # two horizontal strokes, 3 pixels thick and 32 long,
    ink[11:14, 3:35] = True  # with 6 rows of paper between them
    histograms = stroke_cues.run_length_histograms(ink).reshape(2, 4, 8)  # kind, direction
    (rows, columns, anti, diagonal), (paper_rows, paper_columns, _, _) = histograms
    # Along the rows, every ink pixel lies in a run of 32 (class 5: 32 to 63) ...
    np.testing.assert_array_equal(rows, np.eye(8)[5])
    # ... down the columns in runs of 3 (class 1: 2 or 3), and slantwise too, but
    # for the strokes' cut-off corners.
    np.testing.assert_array_equal(columns, np.eye(8)[1])
    np.testing.assert_array_equal(anti, diagonal)
    assert anti[1] > 0.95 and anti[0] == pytest.approx(1 - anti[1])
    # The paper between the strokes: runs of 6 down the columns (class 2: 4 to 7),
    # and none along the rows, where no paper lies between two runs of ink.
    np.testing.assert_array_equal(paper_columns, np.eye(8)[2])
    np.testing.assert_array_equal(paper_rows, np.zeros(8))
    # A mask turned a quarter swaps rows and columns.
    turned = stroke_cues.run_length_histograms(np.rot90(ink)).reshape(2, 4, 8)
    np.testing.assert_array_equal(turned[:, [1, 0]], histograms[:, [0, 1]])
    # Runs longer than 127 pixels share the last class.
    assert stroke_cues.run_length_histograms(np.ones((1, 300), dtype=bool))[7] == 1.0


def test_run_lengths_follow_the_descriptor(stroke_cues):
    blank = np.full((30, 50), 240, dtype=np.uint8)
    scans = [blank, _stroke(40, 120)]
    plain = stroke_cues.descriptors(scans)
    rows = stroke_cues.descriptors(scans, run_lengths=True)
    assert rows.shape == (2, plain.shape[1] + stroke_cues.N_RUN_LENGTHS)
    np.testing.assert_array_equal(rows[:, : plain.shape[1]], plain)
    # Blank: unknown; a stroke: 8 histograms, each summing to 1 or empty.
    assert np.isnan(rows[0]).all()
    sums = rows[1, plain.shape[1]:].reshape(8, 8).sum(axis=1)
    assert np.isin(np.round(sums, 9), [0.0, 1.0]).all() and sums[:4].min() == pytest.approx(1.0)
