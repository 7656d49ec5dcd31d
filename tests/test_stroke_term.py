"""The stroke term: the verifier learns from the differences of two stroke
descriptors, weighs them on its held-out pairs, and saves them."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import skseg
from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg._pairs import stroke_differences
from skseg.metrics import equal_error_rate
from skseg.verifier import STROKE_WEIGHTS

from .conftest import CANVAS

TINY = {"max_epochs": 1, "random_state": 0}


@pytest.fixture(scope="module")
def stroked_pairs(signature_pairs):
    """The fixture's pairs with sizes and descriptors, split as it splits them."""
    X = SignaturePreprocessor(canvas_size=CANVAS).transform(signature_pairs["raw_pairs"])
    y, groups = signature_pairs["y"], signature_pairs["groups"]
    test = np.isin(groups, np.unique(groups)[-8:])
    return (X[~test], y[~test]), (X[test], y[test])


class SplitRecorder(SiameseVerifier):
    """Keeps the validation split it drew, to check what was chosen on it."""

    def _validation_split(self, index, target, n_images, rng):
        self.split_ = super()._validation_split(index, target, n_images, rng)
        return self.split_


def test_auto_takes_the_weight_best_on_the_held_out_pairs(stroked_pairs, tmp_path):
    (X, y), _ = stroked_pairs
    model = SplitRecorder(**TINY).fit(X, y)
    assert model.stroke_weight_ in STROKE_WEIGHTS and model.stroke_weight_ > 0
    _, valid = model.split_
    held_out = X[valid]
    log_odds = model.stroke_model_.decision_function(stroke_differences(held_out))
    fused = model.threshold_ - model.decision_function(held_out)
    network = fused + model.stroke_weight_ * log_odds  # with the size term
    eers = {w: equal_error_rate(y[valid], -(network - w * log_odds))[0] for w in STROKE_WEIGHTS}
    assert model.validation_eer_ == pytest.approx(min(eers.values()), abs=1e-9)
    assert eers[model.stroke_weight_] == pytest.approx(min(eers.values()), abs=1e-9)
    assert model.validation_eer_ <= eers[0.0]
    # The curve it chose on is kept, and saved.
    assert list(model.stroke_weight_eers_) == [float(w) for w in STROKE_WEIGHTS]
    np.testing.assert_allclose(list(model.stroke_weight_eers_.values()), list(eers.values()),
                               atol=1e-9)
    skseg.save(model, tmp_path / "m.safetensors")
    loaded = skseg.load(tmp_path / "m.safetensors", device=model.device_)
    assert loaded.stroke_weight_eers_ == model.stroke_weight_eers_
    assert loaded.size_weight_eers_ == model.size_weight_eers_


def test_the_decision_is_the_network_less_the_weighted_log_odds(stroked_pairs):
    (X, y), (X_test, _) = stroked_pairs
    fused = SiameseVerifier(stroke_weight=0.25, **TINY).fit(X, y)
    alone = SiameseVerifier(stroke_weight=0, **TINY).fit(X, y)  # the same network: same seed
    assert fused.stroke_weight_ == 0.25 and alone.stroke_model_ is None
    assert fused.stroke_weight_eers_ == alone.stroke_weight_eers_ == {}  # chosen by nobody
    network = alone.threshold_ - alone.decision_function(X_test)
    log_odds = fused.stroke_model_.decision_function(stroke_differences(X_test))
    np.testing.assert_allclose(fused.decision_function(X_test),
                               fused.threshold_ - (network - 0.25 * log_odds),
                               rtol=1e-6, atol=1e-7)
    # The classifier learnt which differences mark a forgery: genuine pairs score higher.
    _, y_test = stroked_pairs[1]
    assert equal_error_rate(y_test, log_odds)[0] < 0.35
    assert (fused.predict_proba(X_test[:5])[:, 1] >= 0.5).tolist() == (
        fused.decision_function(X_test[:5]) >= 0).tolist()


def test_no_descriptors_or_no_held_out_pairs_give_no_stroke_term(stroked_pairs):
    (X, y), _ = stroked_pairs
    plain = SiameseVerifier(**TINY).fit(np.asarray(X), y)
    assert plain.stroke_weight_ == 0 and plain.stroke_model_ is None
    # Chosen on the pairs the classifier learnt from, any weight would look good.
    everything = SiameseVerifier(validation_fraction=0, **TINY).fit(X, y)
    assert everything.stroke_weight_ == 0
    assert SiameseVerifier(validation_fraction=0, stroke_weight=0.5, **TINY).fit(
        X, y).stroke_weight_ == 0.5


def test_a_fixed_weight_needs_descriptors_and_a_fitted_one_refuses_pairs_without(
        stroked_pairs):
    (X, y), _ = stroked_pairs
    with pytest.raises(ValueError, match=r"stroke_weight=0.5 needs the stroke descriptor"):
        SiameseVerifier(stroke_weight=0.5, **TINY).fit(np.asarray(X), y)
    with pytest.raises(ValueError, match="'stroke_weight' parameter"):
        SiameseVerifier(stroke_weight=-1, **TINY).fit(X, y)
    model = SiameseVerifier(stroke_weight=0.5, **TINY).fit(X, y)
    sizes_only = PairedCanvases(X.images, X.index, X.sizes)
    with pytest.raises(ValueError, match=r"stroke_weight_=0.5.*X carries none"):
        model.decision_function(sizes_only[:4])
    with pytest.raises(ValueError, match="carries none"):
        model.calibrate_threshold(sizes_only, y)
    model.calibrate_threshold(X, y, strategy="accuracy")  # with descriptors: fine
    # Descriptors of another width (another release's parts) are refused, naming both.
    fewer = PairedCanvases(X.images, X.index, X.sizes, X.strokes[:, :-64])
    with pytest.raises(ValueError, match=r"fitted on descriptors of 650 numbers, but X carries "
                                         r"descriptors of 586"):
        model.decision_function(fewer[:4])


def test_the_stroke_term_is_saved_and_loaded(stroked_pairs, tmp_path):
    (X, y), (X_test, _) = stroked_pairs
    model = SiameseVerifier(stroke_weight=0.125, **TINY).fit(X, y)
    path = tmp_path / "m.safetensors"
    skseg.save(model, path)
    loaded = skseg.load(path, device=model.device_)
    assert loaded.stroke_weight_ == 0.125
    np.testing.assert_array_equal(
        loaded.stroke_model_.decision_function(stroke_differences(X_test)),
        model.stroke_model_.decision_function(stroke_differences(X_test)))
    np.testing.assert_allclose(loaded.decision_function(X_test), model.decision_function(X_test),
                               rtol=1e-5, atol=1e-6)
    # A file whose trees were cut short is refused, naming the file.
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys() if k != "stroke_model.threshold"}
    cut = tmp_path / "cut.safetensors"
    save_file(state, str(cut), metadata=metadata)
    with pytest.raises(ValueError, match=r"cut.safetensors.*trees are incomplete.*threshold"):
        skseg.load(cut)


def test_version_1_files_still_load(stroked_pairs, tmp_path):
    (X, y), (X_test, _) = stroked_pairs
    model = SiameseVerifier(stroke_weight=0, **TINY).fit(X, y)
    path = tmp_path / "m.safetensors"
    skseg.save(model, path)
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["skseg"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    # What skseg wrote before the stroke term: version 1, no stroke weight or parameter.
    header["format_version"] = 1
    del header["verifier"]["stroke_weight"], header["verifier"]["params"]["stroke_weight"]
    old = tmp_path / "old.safetensors"
    save_file(state, str(old), metadata={"skseg": json.dumps(header)})
    loaded = skseg.load(old, device=model.device_)
    assert loaded.stroke_weight_ == 0 and loaded.stroke_model_ is None
    assert loaded.stroke_weight_eers_ == {}
    np.testing.assert_allclose(loaded.decision_function(X_test), model.decision_function(X_test),
                               rtol=1e-5, atol=1e-6)


def test_the_pipeline_passes_descriptors_from_paths_to_the_verifier(signature_pairs, tmp_path):
    from sklearn.pipeline import make_pipeline

    raw, y = signature_pairs["raw_pairs"][:120], signature_pairs["y"][:120]
    pipe = make_pipeline(SignaturePreprocessor(canvas_size=CANVAS),
                         SiameseVerifier(stroke_weight=1.0, **TINY))
    pipe.fit(raw, y)  # a fixed weight: fails unless the descriptors reach the verifier
    assert pipe[-1].stroke_weight_ == 1.0
    skseg.save(pipe, tmp_path / "pipe.safetensors")
    loaded = skseg.load(tmp_path / "pipe.safetensors", device=pipe[-1].device_)
    np.testing.assert_allclose(loaded.decision_function(raw[:6]), pipe.decision_function(raw[:6]),
                               rtol=1e-5, atol=1e-6)
    off = make_pipeline(SignaturePreprocessor(canvas_size=CANVAS, stroke_descriptors=False),
                        SiameseVerifier(stroke_weight=1.0, **TINY))
    with pytest.raises(ValueError, match="stroke_descriptors=False"):
        off.fit(raw, y)


def test_tensors_and_arrays_give_one_distance(stroked_pairs):
    # fit chooses the threshold on tensors; predict scores with numpy: the same numbers.
    (X, y), _ = stroked_pairs
    model = SiameseVerifier(stroke_weight=0.5, **TINY).fit(X, y)
    as_tensor = model._distances(X[:30], numpy=False)
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.cpu().numpy(), model._distances(X[:30]), rtol=1e-12)
