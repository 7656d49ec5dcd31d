"""Mini-batches of unique images, with every labelled pair among them.

In signature data each image takes part in many pairs (a CEDAR writer's 48
images form about 550 SigNet pairs). Drawing batches of *pairs* runs the network
twice per pair; drawing batches of *images* and scoring every labelled pair
whose two images are both in the batch runs it once per image. To make such
pairs plentiful, images that are linked by genuine pairs (in practice: one
writer's signatures, and the forgeries paired with them) are kept together.

Each epoch uses every labelled pair exactly once: first in batches built from
these clusters, then, for the pairs those batches split apart, in batches
packed pair by pair.
"""

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from torch.utils.data import Dataset


class PairDataset(Dataset):
    """A bank of unique images and the labelled pairs between them.

    Parameters
    ----------
    images : torch.Tensor of shape (n_images, H, W), uint8
        The bank; it may live on the training device.
    pairs : np.ndarray of shape (n_pairs, 2), int
        Positions in ``images`` of each pair's two images.
    target : np.ndarray of shape (n_pairs,)
        1.0 for a genuine pair, 0.0 for a forged pair.
    """

    def __init__(self, images, pairs, target):
        self.images = images
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.target = np.asarray(target, dtype=np.float32)

    def __len__(self):
        return len(self.pairs)


def image_clusters(pairs, target, n_images):
    """Cluster id per image: components of the genuine-pair graph.

    An image in no genuine pair (a forgery) joins the cluster of the first
    image it is paired with, so that its pairs fall inside one cluster.
    """
    positive = pairs[target > 0.5]
    graph = coo_matrix(
        (np.ones(len(positive)), (positive[:, 0], positive[:, 1])), shape=(n_images, n_images)
    )
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    for a, b in pairs:
        if sizes[labels[a]] == 1 and sizes[labels[b]] > 1:
            labels[a] = labels[b]
        elif sizes[labels[b]] == 1 and sizes[labels[a]] > 1:
            labels[b] = labels[a]
    return np.unique(labels, return_inverse=True)[1]


def pack_pieces(pieces, batch_size):
    """Consecutive pieces (arrays of image positions) joined into batches of at most
    ``batch_size`` images; a piece is never split, and one larger than a batch is alone."""
    batches, current, size = [], [], 0
    for piece in pieces:
        if size + len(piece) > batch_size and current:
            batches.append(np.concatenate(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece)
    if current:
        batches.append(np.concatenate(current))
    return batches


class PairBatches:
    """Re-iterable mini-batches over a :class:`PairDataset` (one pass = one epoch).

    Yields ``(X, y)`` with ``X = {"images": uint8 (b, H, W)}`` and
    ``y = {"pairs": (m, 2) positions within the batch, "target": (m,)}``.

    Every labelled pair is trained once per epoch. Batches can also carry
    pairs the labels imply, at no extra image forward:

    - ``implied_pairs``: within a writer (a cluster of the genuine-pair graph),
      every two genuine images are a genuine pair, and a forgery paired with
      one of the writer's genuine images is a forgery against all of them;
    - ``random_negatives``: two genuine images of different clusters are a
      random forgery. This assumes that different clusters are different
      writers, as when all genuine pairs of each writer are given.

    Parameters
    ----------
    dataset : PairDataset
        The image bank and labelled pairs to draw from.
    batch_size : int
        Most unique images per batch.
    shuffle : bool
        Draw a new random arrangement each epoch; otherwise a fixed one.
    random_state : int, optional
        Seed of the arrangement.
    implied_pairs : bool, default=False
        Add the pairs implied within each writer.
    random_negatives : float, default=0.0
        Random-forgery pairs added per genuine pair of a batch (at most all
        of the batch's cross-writer genuine pairs).
    num_shards, shard : int, default=1, 0
        For data-parallel training: each of ``num_shards`` processes draws the
        same plan (same ``random_state``) and takes every ``num_shards``-th
        batch from position ``shard``. Every shard gets the same number of
        batches (the last few of an epoch may go unused), since processes that
        synchronise gradients must take the same number of steps.
    """

    def __init__(self, dataset, batch_size, shuffle=False, random_state=None,
                 implied_pairs=False, random_negatives=0.0, num_shards=1, shard=0):
        if not 0 <= shard < num_shards:
            raise ValueError(f"shard={shard} is not in [0, num_shards={num_shards}).")
        self.num_shards = num_shards
        self.shard = shard
        self.dataset = dataset
        self.batch_size = max(2, int(batch_size))
        self.shuffle = shuffle
        self.implied_pairs = implied_pairs
        self.random_negatives = random_negatives
        self.rng = np.random.default_rng(random_state)
        n_images = len(dataset.images)
        self._cluster_of = image_clusters(dataset.pairs, dataset.target, n_images)
        # Images in a genuine pair are genuine signatures of their cluster's writer.
        self._genuine = np.zeros(n_images, dtype=bool)
        self._genuine[dataset.pairs[dataset.target > 0.5].ravel()] = True
        used = np.unique(dataset.pairs)
        clusters = self._cluster_of[used]
        # Images of each cluster, as positions in the bank.
        order = np.argsort(clusters, kind="stable")
        bounds = np.flatnonzero(np.diff(clusters[order])) + 1
        self._clusters = np.split(used[order], bounds)

    def plan_epoch(self):
        """The epoch's batches: a list of (image positions, pairs, targets).

        Pairs are ``(m, 2)`` positions in the bank, targets ``(m,)`` floats.
        """
        rng = self.rng if self.shuffle else np.random.default_rng(0)
        plan = self._plan(self._image_batches(rng), rng)
        if self.num_shards > 1:
            usable = len(plan) - len(plan) % self.num_shards
            plan = plan[self.shard : usable : self.num_shards]
        return plan

    def _image_batches(self, rng):
        """The epoch's batches of images: whole clusters packed together, in random order."""
        pieces = []
        n_clusters = len(self._clusters)
        cluster_order = rng.permutation(n_clusters) if self.shuffle else range(n_clusters)
        for c in cluster_order:
            members = self._clusters[c]
            if self.shuffle:
                members = rng.permutation(members)
            # Clusters larger than a batch are cut into batch-sized pieces.
            pieces += [members[start : start + self.batch_size]
                       for start in range(0, len(members), self.batch_size)]
        return pack_pieces(pieces, self.batch_size)

    def _plan(self, batches, rng):
        """Each batch of images with the pairs inside it (labelled and extra), then the
        labelled pairs that the batches split apart (:meth:`_split_pairs_to_train`)."""
        batch_of = np.full(len(self.dataset.images), -1)
        for i, images in enumerate(batches):
            batch_of[images] = i
        pairs, target = self.dataset.pairs, self.dataset.target
        a, b = batch_of[pairs[:, 0]], batch_of[pairs[:, 1]]
        inside = a == b
        pair_ids = np.flatnonzero(inside)
        by_batch = np.split(pair_ids[np.argsort(a[inside], kind="stable")],
                            np.cumsum(np.bincount(a[inside], minlength=len(batches)))[:-1])
        plan = []
        for images, ids in zip(batches, by_batch):
            extra, extra_target = self._extra_pairs(images, pairs[ids], target[ids], rng)
            if len(ids) or len(extra):
                plan.append((images, np.concatenate([pairs[ids], extra]),
                             np.concatenate([target[ids], extra_target])))
        split = self._split_pairs_to_train(np.flatnonzero(~inside))
        for images, ids in self._pack_pairs(split, rng):
            plan.append((images, pairs[ids], target[ids]))
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        return plan

    def _split_pairs_to_train(self, pair_ids):
        """Which of the pairs split across batches to train this epoch: all of them."""
        return pair_ids

    def _extra_pairs(self, images, labelled, labelled_target, rng):
        """Implied and random-forgery pairs of one batch, minus the labelled ones."""
        if not (self.implied_pairs or self.random_negatives > 0):
            return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
        a, b = np.triu_indices(len(images), k=1)
        a, b = images[a], images[b]
        genuine = self._genuine
        same = self._cluster_of[a] == self._cluster_of[b]
        both_genuine = genuine[a] & genuine[b]
        # Labelled pairs are in the batch already, in either order.
        n = len(self.dataset.images)
        new = ~np.isin(np.minimum(a, b) * n + np.maximum(a, b),
                       labelled.min(axis=1) * n + labelled.max(axis=1))
        positive = same & both_genuine & new & self.implied_pairs
        skilled = same & (genuine[a] != genuine[b]) & new & self.implied_pairs
        random = np.flatnonzero(~same & both_genuine & new)
        n_random = round(self.random_negatives * (positive.sum() + labelled_target.sum()))
        if len(random) > n_random:
            random = rng.choice(random, n_random, replace=False)
        keep = np.concatenate([np.flatnonzero(positive), np.flatnonzero(skilled), random])
        target = (np.arange(len(keep)) < positive.sum()).astype(np.float32)
        return np.stack([a[keep], b[keep]], axis=1), target

    def _pack_pairs(self, pair_ids, rng):
        """Batches for pairs split across clusters, filled pair by pair."""
        if self.shuffle:
            pair_ids = rng.permutation(pair_ids)
        pairs = self.dataset.pairs
        plan, images, ids = [], {}, []
        for p in pair_ids:
            new = [i for i in pairs[p] if i not in images]
            if len(images) + len(new) > self.batch_size:
                plan.append((np.fromiter(images, dtype=np.int64), np.array(ids)))
                images, ids = {}, []
                new = list(dict.fromkeys(pairs[p]))
            for i in new:
                images[i] = None
            ids.append(p)
        if ids:
            plan.append((np.fromiter(images, dtype=np.int64), np.array(ids)))
        return plan

    def __iter__(self):
        data = self.dataset
        device = data.images.device
        local = np.empty(len(data.images), dtype=np.int64)
        for images, pairs, target in self.plan_epoch():
            local[images] = np.arange(len(images))
            index = torch.from_numpy(images).to(device)
            yield (
                {"images": data.images.index_select(0, index)},
                {
                    "pairs": torch.from_numpy(local[pairs]).to(device),
                    "target": torch.from_numpy(target).to(device),
                },
            )
