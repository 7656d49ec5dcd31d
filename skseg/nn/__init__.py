"""The torch side of skseg: backbones, losses, the Siamese module and its skorch net.

Nothing here reads files or knows about scikit-learn labels; the
:class:`~skseg.SiameseVerifier` translates between the two worlds.
"""

from .backbones import BACKBONES, CompactNet, SigNet
from .batching import PairBatches, PairDataset
from .losses import LOSSES, BinaryCrossEntropyLoss, ContrastiveLoss, TripletLoss
from .net import SiameseNet
from .siamese import DISTANCES, SiameseModule

__all__ = [
    "BACKBONES",
    "DISTANCES",
    "LOSSES",
    "BinaryCrossEntropyLoss",
    "CompactNet",
    "ContrastiveLoss",
    "PairBatches",
    "PairDataset",
    "SiameseModule",
    "SiameseNet",
    "SigNet",
    "TripletLoss",
]
