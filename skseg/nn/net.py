"""The skorch ``NeuralNet`` that trains a :class:`~skseg.nn.siamese.SiameseModule`.

skorch supplies the training loop, callbacks, history, device handling and
CUDA-safe pickling. This subclass changes only what pairs need: batches of
unique images with the pairs among them (:class:`PairBatches`), a loss over
those pairs, and embedding of a bank of images.
"""

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback

from .batching import PairBatches


def _rows(embeddings, index):
    """``embeddings[index]`` as a one-hot matrix product.

    Indexing's backward adds gradients with parallel atomics on large batches,
    so the same seed would not give the same model; a matmul's backward is
    deterministic, and cheap next to the backbone.
    """
    select = torch.nn.functional.one_hot(index, len(embeddings)).to(embeddings.dtype)
    return select @ embeddings


class PairUsage(Callback):
    """Records, per epoch, pairs trained per image forward.

    Shown as ``pairs/img`` in the epoch table: a naive Siamese loop runs two
    forwards per pair, i.e. 0.5 pairs per image forward. The pairs are the
    labelled ones plus, if asked, those implied within each batch
    (:class:`~skseg.nn.batching.PairBatches`).
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            net.history.record_batch("train_pairs", int(batch[1]["pairs"].shape[0]))

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1]["batches"]
        pairs = sum(b.get("train_pairs", 0) for b in batches)
        images = sum(b.get("train_batch_size", 0) for b in batches)
        net.history.record("pairs/img", pairs / max(images, 1))


class SiameseNet(NeuralNet):
    """skorch net over a :class:`~skseg.nn.batching.PairDataset`.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`skorch.NeuralNet`.
    random_state : int, optional
        Seed of the batch arrangement.
    implied_pairs : bool, default=False
        Also train on the pairs that the labels imply within each writer.
    random_negatives : float, default=0.0
        Random-forgery pairs added to each batch per genuine pair.

    See :class:`PairBatches` for both.
    """

    def __init__(self, *args, random_state=None, implied_pairs=False, random_negatives=0.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.random_state = random_state
        self.implied_pairs = implied_pairs
        self.random_negatives = random_negatives

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("pair_usage", PairUsage())]

    def get_iterator(self, dataset, training=False):
        num_shards, shard = self._shards(training)
        return PairBatches(
            dataset, self.batch_size, shuffle=training, random_state=self.random_state,
            implied_pairs=self.implied_pairs, random_negatives=self.random_negatives,
            num_shards=num_shards, shard=shard,
        )

    def _shards(self, training):
        """``(num_shards, shard)`` of this process's batches: one process, all of them."""
        return 1, 0

    def get_loss(self, y_pred, y_true, X=None, training=False):
        pairs, target = y_true["pairs"], y_true["target"]
        distance = self._siamese_module().pair_distance(
            _rows(y_pred, pairs[:, 0]), _rows(y_pred, pairs[:, 1])
        )
        return self.criterion_(distance, target, pairs)

    def _siamese_module(self):
        """The :class:`~skseg.nn.SiameseModule` (subclasses may wrap ``module_``)."""
        return self.module_

    def embed(self, images, batch_size=None):
        """Embeddings of a uint8 image bank ``(n, H, W)``, as a tensor on ``self.device``.

        In batches of the training size by default, so that inference needs no
        more activation memory than training did.
        """
        batch_size = batch_size or self.batch_size
        self.module_.eval()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                chunk = torch.as_tensor(images[start : start + batch_size]).to(self.device)
                chunks.append(self.module_(chunk))
        if not chunks:
            return torch.empty((0, 0), device=self.device)
        return torch.cat(chunks)

    def pair_distances(self, embeddings, pairs, batch_size=65536, numpy=True):
        """Distances of index pairs ``(m, 2)`` into ``embeddings``.

        A float64 numpy array, or with ``numpy=False`` a tensor on the net's
        device (so that threshold calibration runs there).
        """
        pairs = torch.as_tensor(np.asarray(pairs, dtype=np.int64), device=embeddings.device)
        out = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                p = pairs[start : start + batch_size]
                out.append(self.module_.pair_distance(embeddings[p[:, 0]], embeddings[p[:, 1]]))
        distances = torch.cat(out).double() if out else embeddings.new_zeros(0, dtype=torch.float64)
        return distances.cpu().numpy() if numpy else distances
