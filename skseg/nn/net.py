"""The skorch ``NeuralNet`` that trains a :class:`~skseg.nn.siamese.SiameseModule`.

skorch supplies the training loop, callbacks, history, device handling and
CUDA-safe pickling. This subclass changes only what pairs need: batches of
unique images with the pairs among them (:class:`PairBatches`), a loss over
those pairs, and embedding of a bank of images.
"""

import fnmatch
import math
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, Freezer
from skorch.utils import to_tensor
from torch.utils.checkpoint import checkpoint

from .batching import PairBatches


def forward_precision(mixed_precision, device):
    """The context of forward passes on ``device``: bfloat16 autocast for
    ``mixed_precision="bf16"``, nothing for None."""
    if mixed_precision is None:
        return nullcontext()
    if mixed_precision != "bf16":
        raise ValueError(f"mixed_precision={mixed_precision!r}: expected None or 'bf16'.")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def freezer(net, patterns):
    """skorch's ``Freezer`` callback, named ``"freezer"``, that keeps the parameters of
    ``net`` (a fitted net) matching ``patterns`` (``fnmatch``) at their values, for
    fine-tuning it; a pattern that matches none of them is refused, naming them all
    (a misspelt pattern would otherwise freeze nothing, silently)."""
    names = [name for name, _ in net.get_all_learnable_params()]
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            raise ValueError(f"freeze pattern {pattern!r} matches no parameter of the "
                             f"network; its parameters are {names}.")
    return ("freezer", Freezer(list(patterns)))


@contextmanager
def _buffers_kept(module):
    """Restore ``module``'s buffers on exit: a recomputed forward must not update
    BatchNorm's running statistics a second time."""
    saved = [b.clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved):
                buffer.copy_(value)


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
    micro_batch_size : int, optional
        Embed each training batch in chunks of this many images, keeping only
        the chunks' inputs and embeddings; a chunk's activations are recomputed
        during the backward pass (activation checkpointing). The loss still
        sees every pair of the batch, and activation memory shrinks to one
        chunk's, for one extra forward pass. BatchNorm normalises over each
        chunk (chunks of near-equal size). Inference embeds in chunks of this size too.

    See :class:`PairBatches` for the pairs.
    """

    def __init__(self, *args, random_state=None, implied_pairs=False, random_negatives=0.0,
                 micro_batch_size=None, mixed_precision=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.random_state = random_state
        self.implied_pairs = implied_pairs
        self.random_negatives = random_negatives
        self.micro_batch_size = micro_batch_size
        self.mixed_precision = mixed_precision

    def _autocast(self):
        return forward_precision(self.mixed_precision, self.device or "cpu")

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("pair_usage", PairUsage())]

    #: The batches of training epochs: :class:`PairBatches`, or a subclass (or a
    #: partial of one) taking the same arguments, e.g. to batch or label differently.
    training_batches = PairBatches

    def get_iterator(self, dataset, training=False):
        num_shards, shard = self._shards(training)
        batches = self.training_batches if training else PairBatches
        return batches(
            dataset, self.batch_size, shuffle=training, random_state=self.random_state,
            implied_pairs=self.implied_pairs, random_negatives=self.random_negatives,
            num_shards=num_shards, shard=shard,
        )

    def _shards(self, training):
        """``(num_shards, shard)`` of this process's batches: one process, all of them."""
        return 1, 0

    def infer(self, x, **fit_params):
        with self._autocast():
            return self._infer(x, **fit_params)

    def _infer(self, x, **fit_params):
        chunk = self.micro_batch_size
        images = x.get("images") if isinstance(x, dict) else None
        if not chunk or images is None or len(images) <= chunk or fit_params:
            return super().infer(x, **fit_params)
        images = to_tensor(images, device=self.device)
        # Near-equal chunks: no tail of one or two images for BatchNorm to normalise over.
        chunks = torch.tensor_split(images, math.ceil(len(images) / chunk))
        if not (self.module_.training and torch.is_grad_enabled()):
            return torch.cat([self.module_(c) for c in chunks])
        # Checkpointing replays each chunk's random draws (augmentation,
        # dropout), so the recomputed activations are the ones the loss saw.
        return torch.cat([
            checkpoint(self.module_, c, use_reentrant=False,
                       context_fn=lambda: (nullcontext(), _buffers_kept(self.module_)))
            for c in chunks
        ])

    def get_loss(self, y_pred, y_true, X=None, training=False):
        pairs, target = y_true["pairs"], y_true["target"]
        distance = self._siamese_module().batch_pair_distance(y_pred, pairs)
        return self.criterion_(distance, target, pairs)

    def _siamese_module(self):
        """The :class:`~skseg.nn.SiameseModule` (subclasses may wrap ``module_``)."""
        return self.module_

    def embed(self, images, batch_size=None):
        """Embeddings of a uint8 image bank ``(n, H, W)``, as a tensor on ``self.device``.

        In batches of the training size (or ``micro_batch_size``) by default,
        so that inference needs no more activation memory than training did.
        """
        batch_size = batch_size or self.micro_batch_size or self.batch_size
        self.module_.eval()
        chunks = []
        with torch.inference_mode(), self._autocast():
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
        # Chunks of at most 2**24 gathered values per side (64 MB): embeddings that
        # hold a local map (thousands of values) must not gather 65536 rows at once.
        batch_size = max(1, min(batch_size, 2**24 // max(1, embeddings.shape[1])))
        out = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                p = pairs[start : start + batch_size]
                out.append(self.module_.pair_distance(embeddings[p[:, 0]], embeddings[p[:, 1]]))
        distances = torch.cat(out).double() if out else embeddings.new_zeros(0, dtype=torch.float64)
        return distances.cpu().numpy() if numpy else distances
