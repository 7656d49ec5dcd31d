"""The Siamese module: a shared backbone, pixel normalisation, augmentation,
and the pair distance (or the binary head of the ``"bce"`` loss)."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .backbones import BACKBONES

#: Pair distances known by name to :class:`~skseg.SiameseVerifier`.
DISTANCES = ("euclidean", "cosine", "l1")


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
            nn.Sequential(nn.BatchNorm1d(embedding_dim), nn.Linear(embedding_dim, 1)) if head else None
        )

    def forward(self, images):
        """Embeddings ``(n, embedding_dim)`` of uint8 canvases ``(n, H, W)``."""
        x = images.unsqueeze(1).to(torch.float32).div_(255.0)
        if self.training and self.augment:
            x = self.augment_batch(x)
        return self.embed_float(x)

    def embed_float(self, x):
        """Embeddings of float canvases ``(n, 1, H, W)`` in [0, 1], as augmented."""
        x = x.contiguous(memory_format=self.memory_format)
        embedding = self.backbone(x).float()
        if self.normalize:
            embedding = F.normalize(embedding, dim=1)
        return embedding

    def augment_batch(self, x):
        """The training augmentation of float canvases ``(n, 1, H, W)`` in [0, 1]."""
        return random_affine(x)

    def pair_distance(self, e1, e2):
        """Distance of each row of ``e1`` to the same row of ``e2`` (higher = less alike)."""
        if self.head is not None:
            return -self.head(torch.abs(e1 - e2)).squeeze(1)
        if self.distance == "euclidean":
            # The epsilon keeps the gradient finite for identical embeddings.
            return torch.sqrt(torch.sum((e1 - e2) ** 2, dim=1) + 1e-12)
        if self.distance == "l1":
            return torch.sum(torch.abs(e1 - e2), dim=1)
        return 1 - F.cosine_similarity(e1, e2, dim=1)
