"""ROC analysis and decision-threshold choice, on torch tensors.

The verifier calibrates its threshold on held-out pairs right after training,
while scores are still on the training device; computing the ROC curve there
avoids a round trip to the host. :func:`roc_curve` gives the same points as
:func:`sklearn.metrics.roc_curve` with ``drop_intermediate=False``.

Scores follow scikit-learn's convention: higher means "more likely the positive
class" (a genuine pair), and a pair is accepted when ``score >= threshold``.
"""

import math

import torch

#: Strategies accepted by :func:`choose_threshold`.
STRATEGIES = ("eer", "accuracy", "youden", "far", "frr")


def roc_curve(y_true, score):
    """Receiver operating characteristic of binary labels and scores.

    Parameters
    ----------
    y_true : torch.Tensor of shape (n,)
        1 (or True) for the positive class, 0 for the negative class.
    score : torch.Tensor of shape (n,)
        Higher means more likely positive.

    Returns
    -------
    fpr, tpr, thresholds : torch.Tensor
        As :func:`sklearn.metrics.roc_curve` with ``drop_intermediate=False``:
        ``thresholds`` decrease, the first is ``+inf`` (nothing accepted), and
        point ``k`` accepts every score ``>= thresholds[k]``.

    Examples
    --------
    >>> import torch
    >>> fpr, tpr, thr = roc_curve(torch.tensor([0, 0, 1, 1]),
    ...                           torch.tensor([0.1, 0.4, 0.35, 0.8]))
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    score = score.reshape(-1).to(torch.float64)
    positive = y_true.reshape(-1).to(torch.float64)
    order = torch.argsort(score, descending=True, stable=True)
    score, positive = score[order], positive[order]
    # The last index of each run of equal scores: one ROC point per distinct score.
    distinct = torch.nonzero(torch.diff(score) != 0).reshape(-1)
    last = torch.cat([distinct, distinct.new_tensor([score.numel() - 1])])
    tps = torch.cumsum(positive, 0)[last]
    fps = (last + 1).to(torch.float64) - tps
    zero = tps.new_zeros(1)
    tps, fps = torch.cat([zero, tps]), torch.cat([zero, fps])
    thresholds = torch.cat([score.new_tensor([math.inf]), score[last]])
    return fps / fps[-1], tps / tps[-1], thresholds


def choose_threshold(y_true, score, strategy="eer", target=None):
    """Choose an acceptance threshold on ``score`` from labelled examples.

    Parameters
    ----------
    y_true : torch.Tensor of shape (n,)
        1 for genuine pairs, 0 for forged pairs. Both must be present.
    score : torch.Tensor of shape (n,)
        Higher means more likely genuine.
    strategy : {"eer", "accuracy", "youden", "far", "frr"}
        - ``"eer"``: where the false acceptance rate (FAR) equals the false
          rejection rate (FRR), the equal error rate.
        - ``"accuracy"``: the highest accuracy on these examples.
        - ``"youden"``: the highest ``TPR - FPR`` (balanced accuracy).
        - ``"far"``: the lowest FRR with ``FAR <= target`` (a bank that caps
          accepted forgeries).
        - ``"frr"``: the lowest FAR with ``FRR <= target`` (a service that caps
          rejected customers).
    target : float in [0, 1], optional
        The rate cap for ``"far"`` and ``"frr"``; ignored otherwise.

    Returns
    -------
    threshold : float
        Accept when ``score >= threshold``. It lies halfway between the
        lowest accepted and the highest rejected score on these examples, so a
        new score that ties neither is classified the same way.

    Examples
    --------
    >>> import torch
    >>> y = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> s = torch.tensor([0.1, 0.2, 0.6, 0.5, 0.8, 0.9])
    >>> choose_threshold(y, s, "accuracy")
    0.7
    >>> choose_threshold(y, s, "far", target=0.0)
    0.7
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"threshold strategy must be one of {STRATEGIES}; got {strategy!r}.")
    if strategy in ("far", "frr") and (target is None or not 0 <= target <= 1):
        raise ValueError(
            f"threshold strategy {strategy!r} needs a target rate in [0, 1]; got {target!r}."
        )
    y_true = y_true.reshape(-1)
    n_pos = int((y_true == 1).sum())
    n_neg = y_true.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "choosing a threshold needs both genuine and forged pairs; "
            f"got {n_pos} genuine and {n_neg} forged."
        )
    fpr, tpr, thresholds = roc_curve(y_true, score)
    fnr = 1 - tpr
    if strategy == "eer":
        k = torch.argmin(torch.abs(fnr - fpr))
    elif strategy == "accuracy":
        k = torch.argmax(tpr * n_pos + (1 - fpr) * n_neg)
    elif strategy == "youden":
        k = torch.argmax(tpr - fpr)
    elif strategy == "far":
        # fpr grows with k: the last admissible point has the highest TPR.
        k = torch.nonzero(fpr <= target + 1e-12).reshape(-1)[-1]
    else:
        k = torch.nonzero(fnr <= target + 1e-12).reshape(-1)[0]
    return _midpoint_threshold(thresholds, int(k))


def _midpoint_threshold(thresholds, k):
    """Threshold halfway between ROC point ``k``'s score and the next lower one."""
    if k == 0:  # reject everything: just above the highest score
        top = thresholds[1]
        return float(torch.nextafter(top, top.new_tensor(math.inf)))
    if k == thresholds.numel() - 1:  # accept everything: at the lowest score
        return float(thresholds[k])
    return float((thresholds[k] + thresholds[k + 1]) / 2)


def equal_error_rate_from_roc(fpr, tpr):
    """The equal error rate of a ROC curve.

    Parameters
    ----------
    fpr, tpr : torch.Tensor
        A ROC curve, as from :func:`roc_curve`.

    Returns
    -------
    eer : float
        FAR and FRR averaged at the point where they are closest.
    k : int
        That point's index in the curve.
    """
    fnr = 1 - tpr
    k = torch.argmin(torch.abs(fnr - fpr))
    return float((fpr[k] + fnr[k]) / 2), int(k)
