"""The patch term: the preprocessor keeps each image's ink mask at the stroke's
scale, the verifier trains a network of small windows on the training pairs'
images, weighs its distance on the held-out pairs, and saves it."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import skseg
from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg.evaluation import cross_validate_writers
from skseg.datasets import make_synthetic_signatures
from skseg.metrics import equal_error_rate
from skseg.patches import PatchNet
from skseg.verifier import PATCH_TRAINING, PATCH_WEIGHTS

from .conftest import CANVAS

TINY = {"max_epochs": 1, "random_state": 0}


@pytest.fixture(scope="module", autouse=True)
def brief_patch_training():
    """The patch network trains on fewer windows here: the defaults take a minute
    on these images on 2 cores, and the tests check the plumbing, not accuracy."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PATCH_TRAINING, "epochs", 2)
        patch.setitem(PATCH_TRAINING, "windows_per_image", 8)
        yield


@pytest.fixture(scope="module")
def masked_pairs(signature_pairs):
    """The fixture's pairs with sizes, descriptors and masks, split as it splits them."""
    prep = SignaturePreprocessor(canvas_size=CANVAS, stroke_masks=True)
    X = prep.transform(signature_pairs["raw_pairs"])
    y, groups = signature_pairs["y"], signature_pairs["groups"]
    test = np.isin(groups, np.unique(groups)[-8:])
    return (X[~test], y[~test]), (X[test], y[test])


@pytest.fixture(scope="module")
def patched(masked_pairs):
    """A verifier with a fixed patch weight, and the same one without the term."""
    (X, y), _ = masked_pairs
    with_patch = SiameseVerifier(patch_weight=0.5, **TINY).fit(X, y)
    return with_patch, SiameseVerifier(**TINY).fit(X, y)


def test_the_preprocessor_keeps_masks_only_when_asked(signature_pairs):
    raw = signature_pairs["raw_pairs"][:6]
    plain = SignaturePreprocessor(canvas_size=CANVAS).transform(raw)
    masked = SignaturePreprocessor(canvas_size=CANVAS, stroke_masks=True).transform(raw)
    assert plain.masks is None
    assert len(masked.masks) == len(masked.images) and "masks" in repr(masked)
    assert all(m.dtype == bool and m.ndim == 2 and m.any() for m in masked.masks)
    # One pass gives both: the descriptors are those computed without the masks.
    np.testing.assert_array_equal(masked.strokes, plain.strokes)
    only = SignaturePreprocessor(canvas_size=CANVAS, stroke_masks=True,
                                 stroke_descriptors=False).transform(raw)
    assert only.strokes is None
    for a, b in zip(only.masks, masked.masks):
        np.testing.assert_array_equal(a, b)
    # Subsets share them, as they share the bank.
    assert masked[[0, 2]].masks is masked.masks


def test_cues_of_single_images_include_masks_on_request():
    scan = np.full((60, 120), 240, dtype=np.uint8)
    scan[25:35, 10:110] = 40
    blank = np.full((60, 120), 240, dtype=np.uint8)
    prep = SignaturePreprocessor(canvas_size=(32, 64), stroke_masks=True, on_blank="ignore")
    canvases, sizes, strokes, masks = prep.transform_with_cues([scan, blank, scan],
                                                               return_masks=True)
    assert masks.shape == (3,) and masks[1] is None and masks[0] is masks[2]
    assert len(prep.transform_with_cues([scan])) == 3  # unchanged without the request
    with pytest.raises(ValueError, match="return_masks=True.*stroke_masks=True"):
        SignaturePreprocessor().transform_with_cues([scan], return_masks=True)


def test_paired_canvases_check_their_masks():
    bank = np.zeros((3, 4, 5), dtype=np.uint8)
    ink = np.ones((8, 9), dtype=bool)
    pairs = PairedCanvases(bank, [[0, 1]], masks=[ink, None, ink])
    assert pairs.masks.dtype == object and pairs.masks[1] is None
    with pytest.raises(ValueError, match="one mask per image of the 3; got 2"):
        PairedCanvases(bank, [[0, 1]], masks=[ink, ink])
    with pytest.raises(ValueError, match="mask 2 must be a 2-D array"):
        PairedCanvases(bank, [[0, 1]], masks=[ink, ink, np.ones(4)])


def test_the_decision_adds_the_weighted_patch_distance(patched, masked_pairs):
    fused, alone = patched
    _, (X_test, y_test) = masked_pairs
    assert fused.patch_weight_ == 0.5 and isinstance(fused.patch_net_, PatchNet)
    assert fused.patch_weight_eers_ == {} and np.isfinite(fused.patch_median_)
    # The default has no patch term, and its stroke term and network are the same.
    assert alone.patch_weight_ == 0 and alone.patch_net_ is None
    assert fused.stroke_weight_ == alone.stroke_weight_
    patch = fused._patch_distances(X_test.masks, X_test.index)
    assert np.isfinite(patch).all() and (patch >= 0).all()
    network = alone.threshold_ - alone.decision_function(X_test)
    np.testing.assert_allclose(fused.decision_function(X_test),
                               fused.threshold_ - (network + 0.5 * patch), rtol=1e-5, atol=1e-6)
    # The windows tell writers apart: genuine pairs are closer than forged ones.
    assert equal_error_rate(y_test, -patch)[0] < 0.45


def test_auto_takes_the_weight_best_on_the_held_out_pairs(masked_pairs):
    (X, y), _ = masked_pairs
    model = SiameseVerifier(patch_weight="auto", **TINY).fit(X, y)
    assert list(model.patch_weight_eers_) == [float(w) for w in PATCH_WEIGHTS]
    best = min(model.patch_weight_eers_.values())
    assert model.patch_weight_eers_[model.patch_weight_] == best
    assert model.validation_eer_ == pytest.approx(best, abs=1e-9)
    assert (model.patch_net_ is None) == (model.patch_weight_ == 0)
    # No held-out pairs: "auto" has nothing to choose on, so no patch term.
    no_validation = SiameseVerifier(patch_weight="auto", validation_fraction=0, **TINY)
    assert no_validation.fit(X, y).patch_weight_ == 0
    assert no_validation.patch_net_ is None


def test_the_patch_term_needs_masks_and_names_the_fix(patched, masked_pairs, signature_pairs):
    fused, _ = patched
    _, (X_test, _) = masked_pairs
    X_train, y_train = signature_pairs["X_train"], signature_pairs["y_train"]
    for weight in ("auto", 0.5):
        with pytest.raises(ValueError, match=r"patch_weight=.*stroke_masks=True"):
            SiameseVerifier(patch_weight=weight, **TINY).fit(X_train, y_train)
    without = PairedCanvases(X_test.images, X_test.index, X_test.sizes, X_test.strokes)
    with pytest.raises(ValueError, match=r"patch_weight_=0.5.*stroke_masks=True"):
        fused.decision_function(without)
    with pytest.raises(ValueError, match="patch_weight"):
        SiameseVerifier(patch_weight=-1.0).fit(X_test, np.arange(len(X_test)) % 2)


def test_a_blank_image_gets_the_median_patch_distance(patched, masked_pairs):
    fused, _ = patched
    _, (X_test, _) = masked_pairs
    masks = X_test.masks.copy()
    blank = X_test.index[0, 1]
    masks[blank] = None
    holed = PairedCanvases(X_test.images, X_test.index, X_test.sizes, X_test.strokes, masks)
    hit = (X_test.index == blank).any(axis=1)
    full, with_hole = fused.decision_function(X_test), fused.decision_function(holed)
    np.testing.assert_array_equal(with_hole[~hit], full[~hit])
    patch = fused._patch_distances(X_test.masks, X_test.index[hit])
    np.testing.assert_allclose(with_hole[hit] - full[hit],
                               0.5 * (patch - fused.patch_median_), rtol=1e-5, atol=1e-6)


def test_the_patch_term_is_saved_and_loaded(patched, masked_pairs, tmp_path):
    fused, _ = patched
    _, (X_test, _) = masked_pairs
    path = tmp_path / "m.safetensors"
    skseg.save(fused, path)
    loaded = skseg.load(path)
    assert loaded.patch_weight_ == 0.5 and loaded.patch_median_ == fused.patch_median_
    np.testing.assert_array_equal(loaded.decision_function(X_test),
                                  fused.decision_function(X_test))
    # A file whose patch network lost its weights is refused, naming the part.
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("patch_net.")}
    save_file(state, str(tmp_path / "cut.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match="patch term's network weights are missing"):
        skseg.load(tmp_path / "cut.safetensors")
    assert json.loads(metadata["skseg"])["format_version"] == 3


def test_the_benchmark_passes_masks_to_every_fold():
    data = make_synthetic_signatures(n_writers=8, n_genuine=4, n_forgeries=4,
                                     forgery_strength=2.0, random_state=1)
    result = cross_validate_writers(
        data, SiameseVerifier(patch_weight=0.25, **TINY),
        preprocessor=SignaturePreprocessor(canvas_size=CANVAS, stroke_masks=True),
        n_splits=2, progress=False)
    assert [fold["patch_weight"] for fold in result["folds"]] == [0.25, 0.25]
    assert all(np.isfinite(fold["eer_skilled"]) for fold in result["folds"])
