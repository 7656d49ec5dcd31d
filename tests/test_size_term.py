"""The size term: ink sizes recorded by the preprocessor, carried by PairedCanvases,
weighed by the verifier, saved with the model."""

import numpy as np
import pytest
import torch

import skseg
from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg._pairs import as_bank, size_distances
from skseg.metrics import equal_error_rate
from skseg.nn.batching import image_clusters
from skseg.verifier import SIZE_WEIGHTS

from .conftest import CANVAS


def _scan(ink_rows=(25, 35), ink_cols=(10, 110), shape=(60, 120)):
    scan = np.full(shape, 240, dtype=np.uint8)
    scan[slice(*ink_rows), slice(*ink_cols)] = 40
    return scan


def test_preprocessor_records_the_ink_box_in_the_input_pixels():
    prep = SignaturePreprocessor(canvas_size=(32, 64), blur_radius=0, on_blank="ignore")
    blank = np.full((60, 120), 240, dtype=np.uint8)
    canvases, sizes = prep.transform_with_sizes([_scan(), _scan()[::2, ::2], blank])
    np.testing.assert_array_equal(canvases, prep.transform([_scan(), _scan()[::2, ::2], blank]))
    np.testing.assert_array_equal(sizes[:2], [[10, 100], [5, 50]])
    assert np.isnan(sizes[2]).all()  # no ink: unknown, not zero


def test_pairs_carry_the_sizes_unless_compact_pairs_is_off():
    prep = SignaturePreprocessor(canvas_size=(32, 64), blur_radius=0)
    small = _scan(ink_cols=(10, 60))
    pairs = prep.transform([[_scan(), small], [small, small]])
    assert isinstance(pairs, PairedCanvases)
    np.testing.assert_array_equal(pairs.sizes[pairs.index], [[[10, 100], [10, 50]],
                                                             [[10, 50], [10, 50]]])
    _, sizes = prep.transform_with_sizes([[_scan(), small], [small, small]])
    np.testing.assert_array_equal(sizes, pairs.sizes[pairs.index])
    dense = SignaturePreprocessor(canvas_size=(32, 64), compact_pairs=False).transform(
        [[_scan(), small]])
    assert isinstance(dense, np.ndarray) and dense.shape == (1, 2, 32, 64)


def _save(scan, path, dpi=None):
    from PIL import Image

    Image.fromarray(scan).save(path, **({} if dpi is None else {"dpi": dpi}))
    return str(path)


def test_sizes_in_inches_compare_scans_of_different_resolutions(tmp_path):
    fine = _save(_scan(), tmp_path / "fine.png", dpi=(200, 200))
    coarse = _save(_scan()[::2, ::2], tmp_path / "coarse.png", dpi=(100, 100))
    stretched = _save(_scan()[::2], tmp_path / "stretched.png", dpi=(200, 100))  # rows halved
    prep = SignaturePreprocessor(canvas_size=(32, 64), blur_radius=0)
    in_pixels = prep.transform([[fine, coarse]])
    np.testing.assert_allclose(size_distances(in_pixels), [2 * np.log(2)])  # looks 2x smaller
    in_inches = prep.set_params(ink_size_unit="inches").transform(
        [[fine, coarse], [fine, stretched]])
    np.testing.assert_allclose(in_inches.sizes[in_inches.index[0]], [[0.05, 0.5]] * 2, rtol=1e-4)
    np.testing.assert_allclose(size_distances(in_inches), [0, 0], atol=1e-6)
    _, sizes = prep.transform_with_sizes([fine, stretched])
    np.testing.assert_allclose(sizes, [[0.05, 0.5]] * 2, rtol=1e-4)  # PNG: dots per metre


def test_inches_need_every_item_to_record_its_resolution(tmp_path):
    fine = _save(_scan(), tmp_path / "fine.png", dpi=(200, 200))
    plain = _save(_scan(), tmp_path / "plain.png")
    prep = SignaturePreprocessor(canvas_size=(32, 64), ink_size_unit="inches")
    with pytest.raises(ValueError, match=r"pair 1, second image \(path '.*plain.png'\): "
                                         r"ink_size_unit='inches' needs the resolution"):
        prep.transform([[fine, fine], [fine, plain]])
    with pytest.raises(ValueError, match=r"image 1 \(array of shape \(60, 120\).*records none"):
        prep.transform_with_sizes([fine, _scan()])
    with pytest.raises(ValueError, match="ink_size_unit"):
        SignaturePreprocessor(ink_size_unit="mm").fit([fine])


def test_the_pipeline_saves_the_unit(tmp_path, sized_pairs):
    from sklearn.pipeline import make_pipeline

    (X, y), _ = sized_pairs
    pipe = make_pipeline(SignaturePreprocessor(canvas_size=CANVAS, ink_size_unit="inches"),
                         SiameseVerifier(max_epochs=1, random_state=0))
    pipe[-1].fit(X, y)
    skseg.save(pipe, tmp_path / "p.safetensors")
    assert skseg.load(tmp_path / "p.safetensors")[0].ink_size_unit == "inches"


def test_size_distance_is_a_log_ratio_free_of_the_resolution():
    images = np.zeros((4, 4, 4), dtype=np.uint8)
    sizes = [[10, 100], [20, 100], [5, 50], [np.nan, np.nan]]
    pairs = PairedCanvases(images, [[0, 1], [1, 0], [0, 0], [0, 3]], sizes)
    np.testing.assert_allclose(size_distances(pairs), [np.log(2), np.log(2), 0, 0])
    # Twice the resolution for both images of a pair: the same distance.
    doubled = PairedCanvases(images, pairs.index, 2 * np.asarray(sizes))
    np.testing.assert_allclose(size_distances(doubled), size_distances(pairs))
    assert size_distances(np.asarray(pairs)) is None
    assert size_distances(PairedCanvases(images, pairs.index)) is None
    assert size_distances(pairs[[0, 2]]).tolist() == pytest.approx([np.log(2), 0])


@pytest.mark.parametrize(
    "sizes, match",
    [
        (np.ones((3, 2)), r"sizes must have shape \(n_images, 2\) = \(4, 2\)"),
        ([[1, 1], [1, 1], [0, 5], [1, 1]], r"image 2 has size \[0.0, 5.0\]"),
        ([[1, 1], [1, -1], [1, 1], [1, 1]], "image 1 has size"),
    ],
)
def test_bad_sizes_name_the_image(sizes, match):
    with pytest.raises(ValueError, match=match):
        PairedCanvases(np.zeros((4, 3, 3), np.uint8), [[0, 1]], sizes)


def _with_sizes(X, y, informative, seed=0):
    """``X`` with made-up ink sizes: with ``informative``, forgeries differ in size.

    Each writer (cluster of images linked by genuine pairs) writes at one size,
    within 5 %; a forgery is 1.3 to 1.6 times larger or smaller than its writer's.
    Uninformative: every image the same size.
    """
    if not informative:
        return PairedCanvases(X.images, X.index, np.full((len(X.images), 2), 100.0))
    rng = np.random.default_rng(seed)
    genuine = np.zeros(len(X.images), dtype=bool)
    genuine[X.index[y == 1].ravel()] = True
    writer = image_clusters(X.index, (y == 1).astype(float), len(X.images))
    writer_size = rng.uniform(80, 200, size=(writer.max() + 1, 2)) * [1, 3]
    ratio = np.where(genuine, rng.uniform(0.95, 1.05, len(genuine)),
                     rng.uniform(1.3, 1.6, len(genuine)) ** rng.choice([-1, 1], len(genuine)))
    return PairedCanvases(X.images, X.index, writer_size[writer] * ratio[:, None])


@pytest.fixture(scope="module")
def sized_pairs(signature_pairs):
    """The fixture's training and test pairs as PairedCanvases (without sizes yet)."""
    return ((PairedCanvases(*as_bank(signature_pairs["X_train"])), signature_pairs["y_train"]),
            (PairedCanvases(*as_bank(signature_pairs["X_test"])), signature_pairs["y_test"]))


def test_informative_sizes_get_a_weight_and_lower_the_error(sized_pairs):
    (X, y), (X_test, y_test) = sized_pairs
    X, X_test = _with_sizes(X, y, informative=True), _with_sizes(X_test, y_test, True, seed=1)
    with_size = SiameseVerifier(max_epochs=2, random_state=0).fit(X, y)
    without = SiameseVerifier(max_epochs=2, random_state=0, size_weight=0).fit(X, y)
    assert with_size.size_weight_ > 0 and without.size_weight_ == 0
    # The curve the weight was chosen on, kept; a fixed weight has none.
    curve = with_size.size_weight_eers_
    assert list(curve) == [float(w) for w in SIZE_WEIGHTS] and without.size_weight_eers_ == {}
    assert curve[with_size.size_weight_] == min(curve.values()) < curve[0.0]
    eer_with = equal_error_rate(y_test, with_size.decision_function(X_test))[0]
    eer_without = equal_error_rate(y_test, without.decision_function(X_test))[0]
    assert eer_with < eer_without - 0.05
    assert with_size.validation_eer_ < without.validation_eer_
    # The decision is the threshold minus the network's distance plus the size term.
    network = without.net_.pair_distances(
        with_size.net_.embed(X_test.images), X_test.index)  # same weights: same seed
    np.testing.assert_allclose(
        with_size.decision_function(X_test),
        with_size.threshold_ - (network + with_size.size_weight_ * size_distances(X_test)),
        rtol=1e-6, atol=1e-9)


def test_auto_weighs_sizes_against_distances_on_a_wide_scale():
    # The "bce" head's distance is a logit, spread over several units: an informative
    # size ratio then needs a weight above 4 to count.
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 2000)
    forged = target == 0
    network = rng.normal(0, 10, 2000) + 5 * forged
    size = np.abs(rng.normal(0, 0.1, 2000)) + 0.3 * forged
    clf = SiameseVerifier()
    weight = clf._choose_size_weight(torch.as_tensor(network), torch.as_tensor(size),
                                     torch.as_tensor(target))
    assert weight > 4
    alone = equal_error_rate(target, -network)[0]
    assert equal_error_rate(target, -(network + weight * size))[0] < alone - 0.1


def test_uninformative_sizes_get_no_weight(sized_pairs):
    (X, y), _ = sized_pairs
    model = SiameseVerifier(max_epochs=1, random_state=0).fit(_with_sizes(X, y, False), y)
    assert model.size_weight_ == 0
    model.predict(np.asarray(X[:3]))  # no size term: plain arrays are fine


def test_plain_arrays_get_no_size_term_with_auto(sized_pairs):
    (X, y), _ = sized_pairs
    model = SiameseVerifier(max_epochs=1, random_state=0).fit(np.asarray(X), y)
    assert model.size_weight_ == 0 and model.size_weight_eers_ == {}


def test_a_fixed_weight_needs_sizes(sized_pairs):
    (X, y), _ = sized_pairs
    with pytest.raises(ValueError, match=r"size_weight=0.5 needs the ink size of each image"):
        SiameseVerifier(max_epochs=1, size_weight=0.5).fit(np.asarray(X), y)
    with pytest.raises(ValueError, match="'size_weight' parameter"):
        SiameseVerifier(max_epochs=1, size_weight=-1).fit(X, y)


def test_a_size_weighted_model_refuses_pairs_without_sizes(sized_pairs):
    (X, y), _ = sized_pairs
    X = _with_sizes(X, y, informative=True)
    model = SiameseVerifier(max_epochs=1, random_state=0, size_weight=0.5).fit(X, y)
    assert model.size_weight_ == 0.5
    with pytest.raises(ValueError, match=r"size_weight_=0.5.*carries no ink sizes"):
        model.decision_function(np.asarray(X[:4]))
    with pytest.raises(ValueError, match="carries no ink sizes"):
        model.calibrate_threshold(np.asarray(X), y)
    model.calibrate_threshold(X, y, strategy="accuracy")  # with sizes: fine


def test_the_weight_is_saved_and_loaded(sized_pairs, tmp_path):
    (X, y), _ = sized_pairs
    X = _with_sizes(X, y, informative=True)
    model = SiameseVerifier(max_epochs=1, random_state=0, size_weight=0.25).fit(X, y)
    skseg.save(model, tmp_path / "m.safetensors")
    loaded = skseg.load(tmp_path / "m.safetensors", device=model.device_)
    assert loaded.size_weight_ == 0.25
    np.testing.assert_allclose(loaded.decision_function(X[:20]), model.decision_function(X[:20]),
                               rtol=1e-5, atol=1e-6)


def test_the_pipeline_passes_sizes_from_paths_to_the_verifier(signature_pairs):
    from sklearn.pipeline import make_pipeline

    raw, y = signature_pairs["raw_pairs"][:120], signature_pairs["y"][:120]
    pipe = make_pipeline(SignaturePreprocessor(canvas_size=CANVAS),
                         SiameseVerifier(max_epochs=1, random_state=0, size_weight=1.0))
    pipe.fit(raw, y)  # a fixed weight: fails unless the sizes reach the verifier
    assert pipe[-1].size_weight_ == 1.0
    assert pipe.predict(raw[:5]).shape == (5,)
