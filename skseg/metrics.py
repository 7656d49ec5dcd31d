"""Verification metrics: equal error rate, FAR and FRR, and scorers.

In signature verification the positive class is "genuine pair" (the second
signature is the claimed writer's own). Two errors matter:

- FAR, false acceptance rate: the fraction of forged pairs accepted;
- FRR, false rejection rate: the fraction of genuine pairs rejected.

Moving the threshold trades one for the other; the equal error rate (EER) is
where they meet, the field's usual single-number summary. With one threshold
for everybody (what a writer-independent verifier uses) it is
:func:`equal_error_rate` of all pairs; papers often report instead the mean of
each writer's own EER, a threshold per writer (:func:`writer_equal_error_rates`).

The scorer :data:`eer_scorer` plugs into
:class:`~sklearn.model_selection.GridSearchCV` like any scikit-learn scorer.
"""

import numpy as np
import torch
from sklearn.metrics import make_scorer
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import type_of_target

from .threshold import equal_error_rate_from_roc, roc_curve

__all__ = ["equal_error_rate", "writer_equal_error_rates", "far_frr", "eer_scorer"]


def _binary_positive(y_true, pos_label):
    """``y_true == pos_label`` as a float tensor, with scikit-learn's label checks."""
    y_true = column_or_1d(y_true)
    kind = type_of_target(y_true, input_name="y_true")
    classes = np.unique(y_true)
    if kind != "binary" or len(classes) != 2:
        raise ValueError(
            "y_true must hold exactly two classes (genuine and forged); "
            f"got {len(classes)}: {classes.tolist()[:10]}."
        )
    if pos_label is None:
        pos_label = classes[1]  # the package's convention: classes_[1] is genuine
    elif pos_label not in classes:
        raise ValueError(f"pos_label={pos_label!r} is not among the labels {classes.tolist()}.")
    return torch.as_tensor(y_true == pos_label, dtype=torch.float64)


def _score_tensor(score, n):
    score = column_or_1d(score)
    if score.shape[0] != n:
        raise ValueError(f"y_true has {n} entries but score has {score.shape[0]}.")
    score = np.asarray(score, dtype=np.float64)
    if not np.isfinite(score).all():
        bad = int(np.flatnonzero(~np.isfinite(score))[0])
        raise ValueError(f"score must be finite; entry {bad} is {score[bad]}.")
    return torch.from_numpy(score)


def equal_error_rate(y_true, score, *, pos_label=None):
    """Equal error rate of scores, and the threshold where it is reached.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,)
        Two labels; ``pos_label`` is "genuine pair".
    score : array-like of shape (n_pairs,)
        Higher means more likely genuine, such as the output of
        ``decision_function`` or ``predict_proba[:, 1]``.
    pos_label : label, default=None
        The genuine label; by default the larger of the two (``classes_[1]``).

    Returns
    -------
    eer : float
        The mean of FAR and FRR at the ROC point where they are closest.
    threshold : float
        The score threshold of that point (accept when ``score >= threshold``).

    Examples
    --------
    >>> from skseg.metrics import equal_error_rate
    >>> eer, thr = equal_error_rate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> round(eer, 2), thr
    (0.5, 0.6)
    """
    positive = _binary_positive(y_true, pos_label)
    score = _score_tensor(score, positive.numel())
    fpr, tpr, thresholds = roc_curve(positive, score)
    eer, k = equal_error_rate_from_roc(fpr, tpr)
    return eer, float(thresholds[k])


def writer_equal_error_rates(y_true, score, writer, *, pos_label=None):
    """Equal error rate of each writer's pairs alone: the error of a threshold per writer.

    The EER of all pairs measures one threshold for every writer. Many
    signature verification papers report instead the mean of this per-writer
    EER ("EER with user thresholds"), which assumes each writer's threshold is
    set at that writer's own equal error point, and is lower. Use it to compare
    with such figures, not as the error a single threshold makes.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,)
        Two labels; ``pos_label`` is "genuine pair".
    score : array-like of shape (n_pairs,)
        Higher means more likely genuine.
    writer : array-like of shape (n_pairs,)
        The claimed writer of each pair (the writer of its reference), such as
        the ``groups`` of :func:`~skseg.datasets.make_pairs`.
    pos_label : label, default=None
        The genuine label; by default the larger of the two.

    Returns
    -------
    eers : dict
        ``{writer: eer}`` in order of first appearance; NaN for a writer whose
        pairs are all genuine or all forged (no EER without both).

    Examples
    --------
    >>> from skseg.metrics import writer_equal_error_rates
    >>> writer_equal_error_rates([1, 0, 1, 0], [0.9, 0.2, 0.3, 0.6], ["a", "a", "b", "b"])
    {'a': 0.0, 'b': 1.0}
    """
    positive = _binary_positive(y_true, pos_label)
    score = _score_tensor(score, positive.numel())
    writer = column_or_1d(writer)
    if writer.shape[0] != positive.numel():
        raise ValueError(f"y_true has {positive.numel()} entries but writer has {writer.shape[0]}.")
    eers = {}
    for w in dict.fromkeys(writer.tolist()):
        rows = torch.from_numpy(writer == w)
        own = positive[rows]
        if 0 < own.sum() < own.numel():
            eers[w] = equal_error_rate_from_roc(*roc_curve(own, score[rows])[:2])[0]
        else:
            eers[w] = float("nan")
    return eers


def far_frr(y_true, score, threshold, *, pos_label=None):
    """False acceptance and false rejection rates at a threshold.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,)
        Two labels; ``pos_label`` is "genuine pair".
    score : array-like of shape (n_pairs,)
        Higher means more likely genuine.
    threshold : float
        Pairs with ``score >= threshold`` are accepted as genuine. For a
        fitted verifier's ``decision_function`` this is 0.
    pos_label : label, default=None
        The genuine label; by default the larger of the two.

    Returns
    -------
    far : float
        Fraction of forged pairs accepted.
    frr : float
        Fraction of genuine pairs rejected.

    Examples
    --------
    >>> from skseg.metrics import far_frr
    >>> far_frr([0, 0, 1, 1], [-1.0, 0.5, 0.2, 2.0], threshold=0.0)
    (0.5, 0.0)
    """
    positive = _binary_positive(y_true, pos_label).numpy().astype(bool)
    accepted = _score_tensor(score, positive.size).numpy() >= threshold
    far = float(accepted[~positive].mean())
    frr = float((~accepted[positive]).mean())
    return far, frr


def _eer_score(y_true, score, pos_label=None):
    return equal_error_rate(y_true, score, pos_label=pos_label)[0]


#: Scorer for model selection: the negated EER (greater is better, as scikit-learn
#: expects). ``GridSearchCV(..., scoring=eer_scorer)``.
eer_scorer = make_scorer(
    _eer_score,
    greater_is_better=False,
    response_method=("decision_function", "predict_proba"),
)
