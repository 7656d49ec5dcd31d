"""bench/size_cue.py: the ink box sizes, the size distance and the fused fold."""

import numpy as np
import pytest

from skseg import SignaturePreprocessor
from skseg.datasets import make_synthetic_signatures
from skseg.datasets._pairs import _items_of

from .conftest import bench_script


@pytest.fixture(scope="module")
def size_cue():
    with bench_script("size_cue") as module:
        yield module


def _scan(height, width, box, top=20, left=30):
    """White paper with one dark rectangle of ``box = (h, w)`` pixels."""
    scan = np.full((height, width), 250, dtype=np.uint8)
    scan[top : top + box[0], left : left + box[1]] = 20
    return scan


def test_log_sizes_are_the_preprocessors_crop_box(size_cue):
    prep = SignaturePreprocessor(canvas_size=(32, 48), blur_radius=0)
    canvases, log_sizes = size_cue.canvases_and_log_sizes([_scan(100, 200, (12, 40))], prep)
    np.testing.assert_array_equal(canvases, prep.transform([_scan(100, 200, (12, 40))]))
    np.testing.assert_allclose(log_sizes, np.log([[12, 40]]))
    # The default blur may widen the box by a pixel on each side, no more.
    _, log_sizes = size_cue.canvases_and_log_sizes([_scan(100, 200, (12, 40))])
    h, w = np.exp(log_sizes[0])
    assert 12 <= h <= 14 and 40 <= w <= 42


def test_size_distance_is_the_log_ratio(size_cue):
    log_sizes = np.log([[10.0, 40.0], [20.0, 40.0], [10.0, 10.0]])
    pairs = np.array([[0, 1], [0, 2]])
    assert size_cue.size_distance(log_sizes, pairs, "height") == pytest.approx([np.log(2), 0])
    assert size_cue.size_distance(log_sizes, pairs, "width") == pytest.approx([0, np.log(4)])
    assert size_cue.size_distance(log_sizes, pairs) == pytest.approx([np.log(2), np.log(4)])


def test_size_alone_separates_forgeries_written_larger(size_cue):
    rng = np.random.default_rng(0)
    items, writer, genuine = [], [], []
    for w in range(3):
        for is_genuine in (True, False):
            for _ in range(4):
                scale = 1.0 if is_genuine else 1.6
                jitter = rng.integers(0, 2, size=2)
                box = (int(20 * scale) + int(jitter[0]), int(60 * scale) + int(jitter[1]))
                items.append(_scan(150, 250, box))
                writer.append(w)
                genuine.append(is_genuine)
    _, log_sizes = size_cue.canvases_and_log_sizes(items)
    result = size_cue.size_alone(log_sizes, np.array(writer), np.array(genuine))
    # Per writer: 6 genuine-genuine and 16 genuine-forgery pairs.
    assert result["n_pairs"] == 3 * (6 + 16)
    assert result["both"] == 0.0 and result["height"] == 0.0 and result["width"] == 0.0


def test_an_image_without_ink_is_named(size_cue):
    items = [_scan(60, 80, (10, 20)), np.full((60, 80), 250, dtype=np.uint8)]
    with pytest.raises(ValueError, match="image 1 .*has no ink"):
        size_cue.canvases_and_log_sizes(items, SignaturePreprocessor(on_blank="ignore"))


def test_fused_fold_chooses_alpha_on_the_fusion_writers(size_cue):
    data = make_synthetic_signatures(n_writers=10, n_genuine=4, n_forgeries=4, random_state=0)
    items, writer, genuine = _items_of(data)
    canvases, log_sizes = size_cue.canvases_and_log_sizes(
        items, SignaturePreprocessor(canvas_size=(32, 48)))
    out = size_cue.fused_fold(canvases, writer, genuine, log_sizes, fold=1,
                              verifier_params={"max_epochs": 1, "batch_size": 16})
    assert out["writers"] == {"fit": 6, "fusion": 2, "test": 2}
    assert out["alpha"] in size_cue.ALPHAS
    # The weight is the one with the lowest EER on the fusion writers, never the test writers'.
    assert out["fusion_eer"][str(out["alpha"])] == min(out["fusion_eer"].values())
    for figures in (out["verifier"], out["fused"]):
        assert 0 <= figures["eer_skilled"] <= 1 and 0 <= figures["eer_random"] <= 1
    if out["alpha"] == 0.0:
        assert out["fused"] == out["verifier"]
