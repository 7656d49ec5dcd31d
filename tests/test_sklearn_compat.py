"""SiameseVerifier and SignaturePreprocessor inside scikit-learn's machinery."""

import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import (
    FixedThresholdClassifier,
    GridSearchCV,
    GroupKFold,
    TunedThresholdClassifierCV,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks as checks

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.metrics import eer_scorer

from .conftest import CANVAS


def _pipeline(**clf_params):
    params = {"max_epochs": 1, "random_state": 0, **clf_params}
    return Pipeline(
        [("prep", SignaturePreprocessor(canvas_size=CANVAS)), ("clf", SiameseVerifier(**params))]
    )


@pytest.fixture(scope="module")
def raw(signature_pairs):
    """Raw (unpreprocessed) pairs of 8 writers, for pipelines."""
    keep = np.isin(signature_pairs["groups"], np.unique(signature_pairs["groups"])[:8])
    return (
        signature_pairs["raw_pairs"][keep],
        signature_pairs["y"][keep],
        signature_pairs["groups"][keep],
    )


@pytest.mark.parametrize("scoring", ["roc_auc", eer_scorer])
def test_grid_search_over_margin_by_writer(raw, scoring):
    pairs, y, groups = raw
    search = GridSearchCV(
        _pipeline(), {"clf__margin": [0.5, 1.0]}, cv=GroupKFold(2), scoring=scoring
    )
    search.fit(pairs, y, groups=groups)
    assert search.best_params_["clf__margin"] in (0.5, 1.0)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(pairs[:3]).shape == (3,)


def test_cross_val_score(raw):
    pairs, y, groups = raw
    scores = cross_val_score(_pipeline(), pairs, y, groups=groups, cv=GroupKFold(2),
                             scoring="roc_auc")
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_clone_get_set_params():
    pipe = _pipeline(margin=2.0, optimizer__weight_decay=0.01)
    params = pipe.get_params()
    assert params["clf__margin"] == 2.0
    assert params["clf__optimizer__weight_decay"] == 0.01
    pipe.set_params(clf__margin=0.3, clf__optimizer__weight_decay=0.2, prep__canvas_size=(32, 48))
    copy = clone(pipe)
    assert copy.get_params()["clf__margin"] == 0.3
    assert copy.get_params()["clf__optimizer__weight_decay"] == 0.2
    assert copy.get_params()["prep__canvas_size"] == (32, 48)


def test_tuned_and_fixed_threshold_classifiers(raw):
    pairs, y, _ = raw
    tuned = TunedThresholdClassifierCV(_pipeline(), scoring="balanced_accuracy", cv=2,
                                       random_state=0)
    tuned.fit(pairs, y)
    assert np.isfinite(tuned.best_threshold_)
    assert set(tuned.predict(pairs[:10])) <= {0, 1}

    fixed = FixedThresholdClassifier(_pipeline(), threshold=0.0,
                                     response_method="decision_function").fit(pairs, y)
    inner = fixed.estimator_
    np.testing.assert_array_equal(fixed.predict(pairs), inner.predict(pairs))


def test_roc_and_det_displays(raw):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from sklearn.metrics import DetCurveDisplay, RocCurveDisplay

    pairs, y, _ = raw
    pipe = _pipeline().fit(pairs, y)
    roc = RocCurveDisplay.from_estimator(pipe, pairs, y)
    det = DetCurveDisplay.from_estimator(pipe, pairs, y)
    assert 0 <= roc.roc_auc <= 1
    assert det.fpr.shape == det.fnr.shape


def test_joblib_round_trip(tmp_path, raw):
    pairs, y, _ = raw
    pipe = _pipeline().fit(pairs, y)
    joblib.dump(pipe, tmp_path / "verifier.joblib")
    loaded = joblib.load(tmp_path / "verifier.joblib")
    np.testing.assert_array_equal(loaded.decision_function(pairs), pipe.decision_function(pairs))
    np.testing.assert_array_equal(loaded.predict_proba(pairs), pipe.predict_proba(pairs))


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="skorch keeps CUDA models on CUDA where there is one; a real GPU "
                    "fit is loaded on the CPU in tests/test_precision_and_device.py")
def test_model_saved_as_cuda_loads_on_the_cpu(tmp_path, fitted_verifier, signature_pairs):
    """skorch maps CUDA tensors to the CPU on load; the verifier then predicts there.

    The weights here live on the CPU and only the recorded device says CUDA, the
    way a GPU-trained model looks to a machine without one.
    """
    clf = clone(fitted_verifier).fit(signature_pairs["X_train"], signature_pairs["y_train"])
    expected = clf.decision_function(signature_pairs["X_test"])
    clf.net_.device = "cuda"
    joblib.dump(clf, tmp_path / "m.joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning
        loaded = joblib.load(tmp_path / "m.joblib")
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_allclose(loaded.decision_function(signature_pairs["X_test"]), expected)


# scikit-learn's estimator checks assume tabular (n_samples, n_features) data and
# are skipped as a whole for estimators whose tags say otherwise. These ones
# need no data, or only call a method before fit, so they apply here:
DATA_FREE_CHECKS = [
    checks.check_estimator_cloneable,
    checks.check_estimator_tags_renamed,
    checks.check_valid_tag_types,
    checks.check_estimator_repr,
    checks.check_no_attributes_set_in_init,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_mixin_order,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_parameters_default_constructible,
    checks.check_estimators_unfitted,
]
# Skipped, with why: every other check fits on random tabular data, e.g.
# check_estimators_dtypes, check_fit_score_takes_y, check_estimators_fit_returns_self,
# check_dont_overwrite_parameters, check_estimators_pickle, check_readonly_memmap_input,
# check_estimators_nan_inf, check_estimators_empty_data_messages,
# check_n_features_in_after_fitting (no feature axis), check_classifiers_train,
# check_classifiers_classes, check_supervised_y_2d, check_classifiers_one_label ...
# Their image-pair equivalents are the tests below and in test_verifier.py
# (fit returns self, parameters untouched by fit, pickling, read-only input,
# dtypes, NaN, empty input, one class / three classes, y of another length).


@pytest.mark.parametrize("estimator", [SiameseVerifier(), SignaturePreprocessor()],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_data_free_checks(estimator, check):
    if check is checks.check_estimators_unfitted and not hasattr(estimator, "predict"):
        pytest.skip("a stateless transformer has nothing to check before fit")
    check(type(estimator).__name__, estimator)


def test_fit_returns_self_and_keeps_parameters(signature_pairs):
    clf = SiameseVerifier(max_epochs=1, random_state=0, callbacks=[])
    before = clf.get_params()
    assert clf.fit(signature_pairs["X_train"], signature_pairs["y_train"]) is clf
    after = clf.get_params()
    assert before.keys() == after.keys()
    assert all(before[k] is after[k] for k in before)


def test_read_only_input(fitted_verifier, signature_pairs):
    X = signature_pairs["X_test"].copy()
    X.setflags(write=False)
    assert fitted_verifier.predict(X).shape == (len(X),)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.float64])
def test_dtypes(fitted_verifier, signature_pairs, dtype):
    X = signature_pairs["X_test"][:8]
    X = X.astype(dtype)
    if np.dtype(dtype).kind == "f":
        X /= 255
    assert fitted_verifier.decision_function(X).shape == (8,)
