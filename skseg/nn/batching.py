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


class PairBatches:
    """Re-iterable mini-batches over a :class:`PairDataset` (one pass = one epoch).

    Yields ``(X, y)`` with ``X = {"images": uint8 (b, H, W)}`` and
    ``y = {"pairs": (m, 2) positions within the batch, "target": (m,)}``.

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
    """

    def __init__(self, dataset, batch_size, shuffle=False, random_state=None):
        self.dataset = dataset
        self.batch_size = max(2, int(batch_size))
        self.shuffle = shuffle
        self.rng = np.random.default_rng(random_state)
        used = np.unique(dataset.pairs)
        self._used_images = used
        clusters = image_clusters(dataset.pairs, dataset.target, len(dataset.images))[used]
        # Images of each cluster, as positions in the bank.
        order = np.argsort(clusters, kind="stable")
        bounds = np.flatnonzero(np.diff(clusters[order])) + 1
        self._clusters = np.split(used[order], bounds)

    def plan_epoch(self):
        """The epoch's batches: a list of (image positions, pair indices)."""
        rng = self.rng if self.shuffle else np.random.default_rng(0)
        n_images = len(self.dataset.images)
        batch_of = np.full(n_images, -1)
        batches = []
        current, size = [], 0
        cluster_order = rng.permutation(len(self._clusters)) if self.shuffle else range(len(self._clusters))
        for c in cluster_order:
            members = self._clusters[c]
            if self.shuffle:
                members = rng.permutation(members)
            # Clusters larger than a batch are cut into batch-sized pieces.
            for start in range(0, len(members), self.batch_size):
                piece = members[start : start + self.batch_size]
                if size + len(piece) > self.batch_size and current:
                    batches.append(np.concatenate(current))
                    current, size = [], 0
                current.append(piece)
                size += len(piece)
        if current:
            batches.append(np.concatenate(current))
        for i, images in enumerate(batches):
            batch_of[images] = i

        pairs = self.dataset.pairs
        a, b = batch_of[pairs[:, 0]], batch_of[pairs[:, 1]]
        inside = a == b
        pair_ids = np.flatnonzero(inside)
        by_batch = np.split(pair_ids[np.argsort(a[inside], kind="stable")],
                            np.cumsum(np.bincount(a[inside], minlength=len(batches)))[:-1])
        plan = [(images, ids) for images, ids in zip(batches, by_batch) if len(ids)]
        plan.extend(self._pack_pairs(np.flatnonzero(~inside), rng))
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        return plan

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
        for images, ids in self.plan_epoch():
            local = np.empty(len(data.images), dtype=np.int64)
            local[images] = np.arange(len(images))
            index = torch.from_numpy(images).to(device)
            yield (
                {"images": data.images.index_select(0, index)},
                {
                    "pairs": torch.from_numpy(local[data.pairs[ids]]).to(device),
                    "target": torch.from_numpy(data.target[ids]).to(device),
                },
            )
