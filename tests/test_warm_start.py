"""SiameseVerifier(warm_start=True): fine-tuning starts from the last fit's weights."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Freezer

import skseg
from skseg import SiameseVerifier

from .conftest import assert_frozen, assert_same_weights, module_weights

# A learning rate too small to move a weight: after such a fit the weights are
# (to float precision) the ones it started from.
FROZEN_LR = 1e-12


@pytest.fixture(scope="module")
def pretrained(signature_pairs):
    d = signature_pairs
    return SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], d["y_train"])


def test_warm_start_fits_from_the_last_weights(pretrained, signature_pairs):
    d = signature_pairs
    before = module_weights(pretrained)
    tuned = clone(pretrained).set_params(warm_start=True, lr=FROZEN_LR, random_state=1)
    tuned.net_ = pretrained.net_  # clone drops fitted state: hand the fit over
    tuned.fit(d["X_test"], d["y_test"])  # other writers: the fine-tuning data
    assert_same_weights(tuned, before)
    # Without warm_start the same fit starts from new weights, far from the fitted ones.
    fresh = clone(tuned).set_params(warm_start=False).fit(d["X_test"], d["y_test"])
    moved = [not torch.allclose(w, before[n]) for n, w in module_weights(fresh).items()]
    assert any(moved)
    # The threshold is chosen anew on the new writers.
    assert tuned.threshold_ != pretrained.threshold_


def test_warm_start_learns_on_top_of_the_last_fit(pretrained, signature_pairs):
    d = signature_pairs
    tuned = clone(pretrained).set_params(warm_start=True)
    tuned.net_ = pretrained.net_
    tuned.fit(d["X_train"], d["y_train"])
    assert len(tuned.net_.history) == 1  # a new history: one more epoch, not two
    changed = [not torch.allclose(w, pretrained_w)
               for w, pretrained_w in zip(module_weights(tuned).values(),
                                          module_weights(pretrained).values())]
    assert any(changed)


def test_warm_start_on_an_unfitted_verifier_is_a_plain_fit(signature_pairs):
    d = signature_pairs
    plain = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], d["y_train"])
    warm = SiameseVerifier(max_epochs=1, random_state=0, warm_start=True)
    warm.fit(d["X_train"], d["y_train"])
    assert_same_weights(warm, plain)


def test_a_loaded_model_fine_tunes(pretrained, signature_pairs, tmp_path):
    d = signature_pairs
    path = tmp_path / "pretrained.safetensors"
    skseg.save(pretrained, path)
    loaded = skseg.load(path).set_params(warm_start=True, lr=FROZEN_LR)
    loaded.fit(d["X_test"], d["y_test"])
    assert_same_weights(loaded, pretrained)


def test_fine_tuning_can_keep_the_first_blocks_as_pretrained(pretrained, signature_pairs,
                                                             tmp_path):
    # The user guide's form: skorch's Freezer on the loaded model's first two blocks.
    d = signature_pairs
    path = tmp_path / "pretrained.safetensors"
    skseg.save(pretrained, path)
    frozen = "backbone.features.[1-5].*"
    loaded = skseg.load(path).set_params(warm_start=True, callbacks=[Freezer(frozen)])
    loaded.fit(d["X_test"], d["y_test"])
    assert_frozen(loaded, pretrained, frozen)


@pytest.mark.parametrize("change", [{"embedding_dim": 16}, {"local_weight": 0}])
def test_weights_that_do_not_fit_are_refused_and_the_fit_is_kept(pretrained, signature_pairs,
                                                                 change):
    d = signature_pairs
    model = clone(pretrained).set_params(warm_start=True, **change)
    model.net_ = pretrained.net_
    for name in ("classes_", "threshold_", "size_weight_", "size_weight_eers_", "stroke_weight_",
                 "stroke_weight_eers_", "stroke_model_", "patch_weight_", "patch_weight_eers_",
                 "patch_net_", "patch_median_", "local_weight_", "proba_scale_",
                 "validation_eer_", "canvas_shape_", "device_"):
        setattr(model, name, getattr(pretrained, name))
    expected = pretrained.decision_function(d["X_test"])
    name = next(iter(change))
    with pytest.raises(ValueError, match=rf"warm_start=True.*{name}=.*fitted model is kept"):
        model.fit(d["X_train"], np.where(d["y_train"] == 1, "genuine", "forged"))
    assert model.net_ is pretrained.net_
    np.testing.assert_array_equal(model.classes_, pretrained.classes_)
    np.testing.assert_array_equal(model.decision_function(d["X_test"]), expected)
