"""The Siamese module: a shared backbone, pixel normalisation, augmentation,
and the pair distance (or the binary head of the ``"bce"`` loss), optionally
mixed with a local match of the two images' feature maps."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .backbones import BACKBONES

#: Pair distances known by name to :class:`~skseg.SiameseVerifier`.
DISTANCES = ("euclidean", "cosine", "l1")


def select_rows(rows, index):
    """``rows[index]`` as a one-hot matrix product.

    Indexing's backward adds gradients with parallel atomics on large batches,
    so the same seed would not give the same model; a matmul's backward is
    deterministic, and cheap next to the backbone.
    """
    select = F.one_hot(index, len(rows)).to(rows.dtype)
    return select @ rows


def shifted_similarity(a, b, reach):
    """Each position's best cosine similarity ``(n, h, w)`` between unit feature maps
    ``a`` and ``b`` ``(n, c, h, w)``, pair by pair: ``a`` at ``p`` against ``b`` at
    every ``p + s`` with ``|s| <= reach`` along each axis (positions off the map
    count as similarity 0)."""
    h, w = a.shape[-2:]
    padded = F.pad(b, (reach, reach, reach, reach))
    best = None
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            similarity = (a * padded[..., dy : dy + h, dx : dx + w]).sum(dim=1)
            best = similarity if best is None else torch.maximum(best, similarity)
    return best


def all_pairs_shifted_similarity(maps, reach):
    """:func:`shifted_similarity` of every image of ``maps`` ``(n, c, h, w)`` against
    every other, ``(h * w, n, n)``: entry ``[p, i, j]`` is image ``i`` at ``p``
    against its best match in image ``j``.

    One batched matrix product per shift: about ten times faster on a CPU
    than pair by pair for the few thousand pairs of a training batch.
    """
    n, c, h, w = maps.shape
    rows = maps.permute(2, 3, 0, 1).reshape(h * w, n, c)
    padded = F.pad(maps, (reach, reach, reach, reach))
    best = None
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            shifted = padded[..., dy : dy + h, dx : dx + w].permute(2, 3, 1, 0)
            similarity = torch.bmm(rows, shifted.reshape(h * w, c, n))
            best = similarity if best is None else torch.maximum(best, similarity)
    return best


def matched_distance(similarity, dim):
    """Mean over ``dim`` of the distance between unit vectors of cosine ``similarity``
    (``|u - v| = sqrt(2 - 2 u.v)``; the epsilon keeps the gradient finite)."""
    return torch.sqrt(torch.clamp(2 - 2 * similarity, min=0) + 1e-12).mean(dim=dim)


def random_affine_grid(shape, max_degrees=3.0, max_scale=0.05, max_shift=0.04, generator=None,
                       device=None, dtype=torch.float32):
    """Sampling grids ``(n, H, W, 2)`` of a small random affine jitter, drawn per image.

    The grid form lets a caller add its own displacement before sampling once.
    """
    n = shape[0]

    def uniform(bound):
        u = torch.rand(n, device=device, dtype=dtype, generator=generator)
        return (2 * u - 1) * bound

    angle = uniform(math.radians(max_degrees))
    scale = 1 + uniform(max_scale)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # theta's rows map output (x, y, 1) to input x and y, as F.affine_grid's do;
    # built by broadcasting, because affine_grid's batched matmul took 10x longer
    # (0.21 s against 0.02 s for 128 canvases of 155 x 220 on one CPU core).
    theta = torch.stack(
        [
            torch.stack([cos, -sin, uniform(2 * max_shift)], dim=1),
            torch.stack([sin, cos, uniform(2 * max_shift)], dim=1),
        ],
        dim=1,
    )
    height, width = shape[-2:]
    # Pixel centres in [-1, 1] (align_corners=False).
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    # (n, 2, 1, W) + (n, 2, H, 1): each grid coordinate is a*x + b*y + c.
    along_x = theta[:, :, 0, None, None] * xs
    along_y = theta[:, :, 1, None, None] * ys[:, None] + theta[:, :, 2, None, None]
    return (along_x + along_y).permute(0, 2, 3, 1)


def random_affine(images, max_degrees=3.0, max_scale=0.05, max_shift=0.04, generator=None):
    """A small random affine jitter of each image, drawn per image, on its device.

    torchvision's ``RandomAffine`` draws one transform for a whole batch; here
    every canvas gets its own rotation, scale and shift, in one
    ``grid_sample`` call. The border fills with 0, the background value.
    """
    grid = random_affine_grid(images.shape, max_degrees, max_scale, max_shift, generator,
                              device=images.device, dtype=images.dtype)
    return F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


class SiameseModule(nn.Module):
    """Embeds uint8 canvases and measures the distance between embeddings.

    Parameters
    ----------
    backbone : str or type
        ``"compact"``, ``"signet"``, or a ``torch.nn.Module`` class called as
        ``backbone(embedding_dim=embedding_dim, **backbone_kwargs)``.
    embedding_dim : int
        Size of the embedding.
    distance : {"euclidean", "cosine", "l1"}
        How two embeddings are compared, when ``head`` is False.
    normalize : bool
        L2-normalise the embeddings (distances then live in [0, 2]).
    head : bool
        Compare pairs with a learned head (BatchNorm, then linear) on
        ``|e1 - e2|`` instead of a fixed distance; the distance reported is then
        ``-logit``.
    augment : bool
        Apply :meth:`augment_batch` (:func:`random_affine`) to training batches.
    backbone_kwargs : dict, optional
        Extra keyword arguments for the backbone.
    channels_last : bool, default=True
        Keep the backbone's weights and inputs in the channels-last memory
        layout (``torch.channels_last``); False keeps PyTorch's default layout.
    local_weight : float in [0, 1], default=0.0
        Weight of the local distance in a pair's distance: ``(1 - local_weight)
        * distance + local_weight * local``. The local distance compares the
        backbone's last feature map (before its pooling to a coarse grid) of
        the two images position by position: a 1 x 1 convolution gives each
        position ``local_channels`` features of unit length, and each position
        of one image is matched to the most similar position within
        ``local_reach`` positions of it in the other image (both ways); the
        local distance is the mean distance of those matches. The embedding
        then also holds the local map, flattened after the ``embedding_dim``
        global features. 0: the global distance alone. Not with ``head``.
    local_channels : int, default=32
        Features per position of the local map.
    local_reach : int, default=1
        How many positions (along each axis) a local match may move.
    """

    def __init__(
        self,
        backbone="compact",
        embedding_dim=128,
        distance="euclidean",
        normalize=True,
        head=False,
        augment=False,
        backbone_kwargs=None,
        channels_last=True,
        local_weight=0.0,
        local_channels=32,
        local_reach=1,
    ):
        super().__init__()
        backbone_cls = BACKBONES[backbone] if isinstance(backbone, str) else backbone
        self.backbone = backbone_cls(embedding_dim=embedding_dim, **(backbone_kwargs or {}))
        # Channels-last weights and inputs: CompactNet trains 10-25% faster on a
        # 2-core AVX2 CPU than in the default layout, inputs alone gain half of it;
        # SigNet ran 1.08x to 1.57x faster on an H100 (docs, performance page).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.backbone.to(memory_format=self.memory_format)
        self.distance = distance
        self.normalize = normalize
        self.augment = augment
        # BatchNorm puts |e1 - e2| on a unit scale, so the linear head learns at
        # the optimizer's pace whatever the embedding's norm.
        self.head = (
            nn.Sequential(nn.BatchNorm1d(embedding_dim), nn.Linear(embedding_dim, 1))
            if head else None
        )
        self.embedding_dim = embedding_dim
        self.local_weight = local_weight
        self.local_reach = local_reach
        self.local = None
        # (channels, h, w) of the local map, known once an image has been embedded.
        self.local_shape = None
        if local_channels < 1 or local_reach < 0:
            raise ValueError(f"local_channels={local_channels}, local_reach={local_reach}: "
                             "need at least one channel and a reach >= 0.")
        if local_weight > 0:
            if head:
                raise ValueError(f"local_weight={local_weight} mixes a local distance into the "
                                 "pair distance; the binary head (loss='bce') has none: set "
                                 "local_weight=0.")
            if not all(hasattr(self.backbone, a) for a in ("forward_features", "feature_channels")):
                raise ValueError(
                    f"local_weight={local_weight} needs the backbone's feature map, but "
                    f"{type(self.backbone).__name__} has no forward_features method or no "
                    "feature_channels attribute (see skseg.nn.backbones): set local_weight=0 "
                    "to use it without local matching.")
            self.local = nn.Conv2d(self.backbone.feature_channels, local_channels, 1)
            self.local.to(memory_format=self.memory_format)

    def forward(self, images):
        """Embeddings ``(n, embedding_dim)`` of uint8 canvases ``(n, H, W)``, followed
        by the flattened local map when ``local_weight`` > 0."""
        x = images.unsqueeze(1).to(torch.float32).div_(255.0)
        if self.training and self.augment:
            x = self.augment_batch(x)
        return self.embed_float(x)

    def embed_float(self, x):
        """Embeddings of float canvases ``(n, 1, H, W)`` in [0, 1], as augmented."""
        x = x.contiguous(memory_format=self.memory_format)
        if self.local is None:
            embedding = self.backbone(x).float()
        else:
            feature_map, embedding = self.backbone.forward_features(x)
            embedding = embedding.float()
            local = F.normalize(self.local(feature_map).float(), dim=1)
            self.local_shape = tuple(local.shape[1:])
        if self.normalize:
            embedding = F.normalize(embedding, dim=1)
        if self.local is None:
            return embedding
        return torch.cat([embedding, local.flatten(1)], dim=1)

    def augment_batch(self, x):
        """The training augmentation of float canvases ``(n, 1, H, W)`` in [0, 1]."""
        return random_affine(x)

    def pair_distance(self, e1, e2):
        """Distance of each row of ``e1`` to the same row of ``e2`` (higher = less alike)."""
        if self.local is None:
            return self._global_distance(e1, e2)
        split = self.embedding_dim
        a, b = self._local_maps(e1), self._local_maps(e2)
        similarity = (shifted_similarity(a, b, self.local_reach)
                      + shifted_similarity(b, a, self.local_reach)) / 2
        return self._mix(self._global_distance(e1[:, :split], e2[:, :split]),
                         matched_distance(similarity, dim=(1, 2)))

    def batch_pair_distance(self, embeddings, pairs):
        """:meth:`pair_distance` of index ``pairs`` ``(m, 2)`` into ``embeddings``.

        Training's form: the local distances of all images of a batch come
        from :func:`all_pairs_shifted_similarity`, then each pair's is picked.
        """
        if self.local is None:  # pair_distance itself: subclasses may change it
            return self.pair_distance(select_rows(embeddings, pairs[:, 0]),
                                      select_rows(embeddings, pairs[:, 1]))
        # Only the global part is gathered per pair; the local maps, thousands of
        # values per image, are compared image against image.
        global_part = embeddings[:, : self.embedding_dim]
        best = all_pairs_shifted_similarity(self._local_maps(embeddings), self.local_reach)
        local = matched_distance((best + best.transpose(1, 2)) / 2, dim=0)  # (n, n)
        local = (select_rows(local, pairs[:, 0]) * F.one_hot(pairs[:, 1], len(local))).sum(1)
        return self._mix(self._global_distance(select_rows(global_part, pairs[:, 0]),
                                               select_rows(global_part, pairs[:, 1])), local)

    def _local_maps(self, embeddings):
        """The local maps ``(n, channels, h, w)`` held in embeddings."""
        if self.local_shape is None:
            raise RuntimeError("the local map's shape is known once an image has been embedded.")
        return embeddings[:, self.embedding_dim :].reshape(-1, *self.local_shape)

    def _mix(self, global_distance, local_distance):
        return (1 - self.local_weight) * global_distance + self.local_weight * local_distance

    def _global_distance(self, e1, e2):
        if self.head is not None:
            return -self.head(torch.abs(e1 - e2)).squeeze(1)
        if self.distance == "euclidean":
            # The epsilon keeps the gradient finite for identical embeddings.
            return torch.sqrt(torch.sum((e1 - e2) ** 2, dim=1) + 1e-12)
        if self.distance == "l1":
            return torch.sum(torch.abs(e1 - e2), dim=1)
        return 1 - F.cosine_similarity(e1, e2, dim=1)
