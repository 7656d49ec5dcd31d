"""Pair losses. Each takes the distances of the labelled pairs in a batch.

All three share one signature, ``loss(distance, target, pairs)``:

- ``distance``: ``(m,)`` float, one per labelled pair, higher = less alike;
- ``target``: ``(m,)`` float, 1 for a genuine pair, 0 for a forged pair;
- ``pairs``: ``(m, 2)`` long, the pair's two image positions in the batch
  (the triplet loss mines triplets from pairs that share an image).
"""

import torch
from torch import nn
from torch.nn import functional as F


class ContrastiveLoss(nn.Module):
    """SigNet's contrastive loss (Hadsell et al. 2006).

    ``pos_weight * y * d**2 + neg_weight * (1 - y) * max(0, margin - d)**2``,
    averaged over the pairs: genuine pairs are pulled together, forged pairs
    pushed at least ``margin`` apart.

    Parameters
    ----------
    margin : float, default=1.0
        Distance beyond which forged pairs cost nothing.
    pos_weight, neg_weight : float, default=1.0
        Weights of genuine and forged pairs.
    """

    def __init__(self, margin=1.0, pos_weight=1.0, neg_weight=1.0):
        super().__init__()
        self.margin = margin
        self.pos_weight = pos_weight
        self.neg_weight = neg_weight

    def forward(self, distance, target, pairs=None):
        pull = self.pos_weight * target * distance.pow(2)
        push = self.neg_weight * (1 - target) * F.relu(self.margin - distance).pow(2)
        return (pull + push).mean()


class TripletLoss(nn.Module):
    """Triplet loss with triplets mined from the labelled pairs of a batch.

    A triplet is an anchor image with a genuine partner ``p`` and a forged
    partner ``n`` (two labelled pairs that share the anchor); its loss is
    ``max(0, d(a, p) - d(a, n) + margin)``. Every such triplet in the batch
    counts. A batch without any triplet falls back to the contrastive loss, so
    that no batch is wasted.

    Parameters
    ----------
    margin : float, default=0.5
        How much farther the forged partner must be than the genuine one.
    """

    def __init__(self, margin=0.5):
        super().__init__()
        self.margin = margin
        self._fallback = ContrastiveLoss(margin)

    def forward(self, distance, target, pairs):
        # Each pair offers a triplet side to both of its images: list it twice.
        anchor = torch.cat([pairs[:, 0], pairs[:, 1]])
        dist = torch.cat([distance, distance])
        genuine = torch.cat([target, target]) > 0.5
        a_pos, d_pos = anchor[genuine], dist[genuine]
        a_neg, d_neg = anchor[~genuine], dist[~genuine]
        shares_anchor = a_pos[:, None] == a_neg[None, :]
        if not bool(shares_anchor.any()):
            return self._fallback(distance, target)
        violation = F.relu(d_pos[:, None] - d_neg[None, :] + self.margin)
        return violation[shares_anchor].mean()


class BinaryCrossEntropyLoss(nn.Module):
    """Cross-entropy of a binary head on ``|e1 - e2|``.

    The Siamese module reports ``distance = -logit`` for such a head, so the
    logit of "genuine pair" is ``-distance``.
    """

    def forward(self, distance, target, pairs=None):
        return F.binary_cross_entropy_with_logits(-distance, target)


#: Losses known by name to :class:`~skseg.SiameseVerifier`.
LOSSES = {
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
    "bce": BinaryCrossEntropyLoss,
}
