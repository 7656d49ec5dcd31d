import numpy as np
import pytest
from sklearn.metrics import roc_curve

from skseg.metrics import eer_scorer, equal_error_rate, far_frr, writer_equal_error_rates


def test_eer_of_separable_scores_is_zero():
    eer, thr = equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert eer == 0.0
    assert far_frr([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], thr) == (0.0, 0.0)


def test_eer_of_reversed_scores_is_one():
    eer, _ = equal_error_rate([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert eer == 1.0


def test_eer_matches_a_reference_computed_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = rng.normal(size=500) + y
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    k = np.argmin(np.abs((1 - tpr) - fpr))
    eer, t = equal_error_rate(y, s)
    assert eer == pytest.approx((fpr[k] + 1 - tpr[k]) / 2)
    assert t == pytest.approx(thr[k])
    assert 0.2 < eer < 0.4  # two unit Gaussians one sigma apart: EER about 0.31


def test_string_labels_use_the_larger_as_genuine():
    y = np.array(["forged", "genuine", "forged", "genuine"])
    eer, _ = equal_error_rate(y, [0.0, 1.0, 0.2, 0.9])
    assert eer == 0.0
    eer, _ = equal_error_rate(y, [0.0, 1.0, 0.2, 0.9], pos_label="forged")
    assert eer == 1.0


def test_far_frr_counts():
    y = [0, 0, 0, 0, 1, 1]
    score = [-2.0, -1.0, 0.5, 1.0, 0.0, -0.1]
    far, frr = far_frr(y, score, threshold=0.0)
    assert far == 0.5 and frr == 0.5


@pytest.mark.parametrize(
    "y, score, match",
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "exactly two classes"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "exactly two classes"),
        ([0, 1], [0.1, 0.2, 0.3], "y_true has 2 entries but score has 3"),
        ([0, 1], [0.1, np.nan], "entry 1 is nan"),
    ],
)
def test_bad_input_is_named(y, score, match):
    with pytest.raises(ValueError, match=match):
        equal_error_rate(y, score)


def test_writer_eers_are_each_writers_own_eer():
    rng = np.random.default_rng(0)
    writer = np.repeat(["b", "a", "c"], 40)
    y = np.tile([1, 0], 60)
    # Each writer's scores on its own scale: one threshold cannot serve all three.
    score = rng.normal(size=120) + 1.5 * y + np.repeat([0.0, 3.0, -3.0], 40)
    eers = writer_equal_error_rates(y, score, writer)
    assert list(eers) == ["b", "a", "c"]  # order of first appearance
    for w, eer in eers.items():
        assert eer == equal_error_rate(y[writer == w], score[writer == w])[0]
    # Thresholds per writer beat the single one here: that is what the figure measures.
    assert np.mean(list(eers.values())) < equal_error_rate(y, score)[0]


def test_writer_eers_of_a_one_class_writer_is_nan():
    eers = writer_equal_error_rates([1, 0, 1, 1], [0.9, 0.2, 0.3, 0.6], [7, 7, 8, 8])
    assert eers[7] == 0.0 and np.isnan(eers[8])


def test_writer_eers_bad_input_is_named():
    with pytest.raises(ValueError, match="y_true has 4 entries but writer has 3"):
        writer_equal_error_rates([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.6], ["a", "a", "b"])
    with pytest.raises(ValueError, match="entry 2 is nan"):
        writer_equal_error_rates([1, 0, 1, 0], [0.9, 0.2, np.nan, 0.6], ["a", "a", "b", "b"])


def test_bad_pos_label():
    with pytest.raises(ValueError, match="pos_label=5 is not among"):
        equal_error_rate([0, 1], [0.1, 0.2], pos_label=5)


class _FixedScores:
    """A stand-in classifier whose decision_function returns its input."""

    classes_ = np.array([0, 1])

    def fit(self, X, y):
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float).ravel()

    def predict(self, X):
        return (self.decision_function(X) >= 0).astype(int)


def test_eer_scorer_is_negated_eer():
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Clf(ClassifierMixin, BaseEstimator, _FixedScores):
        pass

    X = np.array([[-1.0], [-0.5], [0.4], [1.0]])
    y = np.array([0, 1, 0, 1])
    assert eer_scorer(Clf(), X, y) == -equal_error_rate(y, X.ravel())[0]
