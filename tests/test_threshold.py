import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve as sk_roc_curve

from skseg.threshold import STRATEGIES, choose_threshold, roc_curve


def _scores(seed, n=200, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 1.2 * y
    if ties:
        s = np.round(s, 1)
    return y, s


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_agrees_with_sklearn(seed, ties):
    y, s = _scores(seed, ties=ties)
    fpr, tpr, thr = roc_curve(torch.from_numpy(y), torch.from_numpy(s))
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr.numpy(), sk_fpr)
    np.testing.assert_allclose(tpr.numpy(), sk_tpr)
    np.testing.assert_allclose(thr.numpy(), sk_thr)


def _rates(y, s, t):
    accepted = s >= t
    return accepted[y == 0].mean(), (~accepted[y == 1]).mean()


@pytest.mark.parametrize("seed", range(3))
def test_strategies_reach_their_optimum(seed):
    y, s = _scores(seed)
    yt, st = torch.from_numpy(y), torch.from_numpy(s)
    candidates = np.concatenate([np.unique(s), [np.inf]])
    rates = np.array([_rates(y, s, t) for t in candidates])  # (far, frr) per threshold
    acc = 1 - (rates[:, 0] * (y == 0).sum() + rates[:, 1] * (y == 1).sum()) / len(y)

    far, frr = _rates(y, s, choose_threshold(yt, st, "accuracy"))
    assert 1 - (far * (y == 0).sum() + frr * (y == 1).sum()) / len(y) == pytest.approx(acc.max())

    far, frr = _rates(y, s, choose_threshold(yt, st, "youden"))
    assert (1 - frr) - far == pytest.approx((1 - rates[:, 1] - rates[:, 0]).max())

    far, frr = _rates(y, s, choose_threshold(yt, st, "eer"))
    assert abs(far - frr) == pytest.approx(np.abs(rates[:, 0] - rates[:, 1]).min())

    for cap in (0.0, 0.05, 0.2):
        far, frr = _rates(y, s, choose_threshold(yt, st, "far", target=cap))
        assert far <= cap
        assert frr == pytest.approx(rates[rates[:, 0] <= cap, 1].min())
        far, frr = _rates(y, s, choose_threshold(yt, st, "frr", target=cap))
        assert frr <= cap
        assert far == pytest.approx(rates[rates[:, 1] <= cap, 0].min())


def test_threshold_lies_between_accepted_and_rejected_scores():
    y = torch.tensor([0, 1])
    assert choose_threshold(y, torch.tensor([0.0, 1.0]), "eer") == pytest.approx(0.5)


def test_reject_all_threshold_is_above_every_score():
    y = torch.tensor([1, 0, 0])
    s = torch.tensor([0.0, 1.0, 2.0])  # genuine scores lowest: only "reject all" has FAR 0
    t = choose_threshold(y, s, "far", target=0.0)
    assert t > 2.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"strategy": "median"}, "threshold strategy must be one of"),
        ({"strategy": "far"}, "needs a target rate"),
        ({"strategy": "frr", "target": 1.5}, "needs a target rate"),
    ],
)
def test_bad_strategy_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        choose_threshold(torch.tensor([0, 1]), torch.tensor([0.0, 1.0]), **kwargs)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="both genuine and forged"):
        choose_threshold(torch.tensor([1, 1]), torch.tensor([0.0, 1.0]))


def test_strategies_constant():
    assert set(STRATEGIES) == {"eer", "accuracy", "youden", "far", "frr"}
