"""Embedding networks: one grayscale canvas in, one embedding vector out.

Every backbone takes a float tensor of shape ``(batch, 1, H, W)`` (ink high,
background 0, values in [0, 1]) and returns ``(batch, embedding_dim)``. Any
``torch.nn.Module`` class with that contract, whose constructor accepts an
``embedding_dim`` keyword, can be passed to
:class:`~skseg.SiameseVerifier` as ``backbone``. Local matching
(``local_weight``) also needs the feature map the embedding is pooled from:
a ``forward_features`` method and a ``feature_channels`` attribute, as the
built-in backbones have.
"""

from torch import nn


def _conv_bn_relu(in_channels, out_channels, kernel_size, stride=1, padding=0):
    # The bias is redundant before BatchNorm.
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class _PooledBackbone(nn.Module):
    """A backbone made of ``features`` (convolutions ending in a pooling to a coarse
    grid) and ``embedding`` (the layers after it)."""

    def forward(self, x):
        return self.embedding(self.features(x))

    def forward_features(self, x):
        """The feature map before the last pooling, ``(batch, feature_channels, h, w)``,
        and the embedding."""
        feature_map = self.features[:-1](x)
        return feature_map, self.embedding(self.features[-1](feature_map))


class SigNet(_PooledBackbone):
    """SigNet, the convolutional Siamese branch of Dey et al. (2017).

    As the authors released it: a 96-filter 11x11 first convolution with
    stride 4, BatchNorm after each convolution (in place of local response
    normalisation), three max-pools, dropout, two fully connected layers and a
    128-d output. Designed for 155 x 220 canvases; other sizes work because
    the last feature map is pooled to SigNet's 3 x 5 grid.

    Parameters
    ----------
    embedding_dim : int, default=128
        Size of the output embedding.
    dropout : float, default=0.3
        Dropout after the second and third pooling (0.5 before the last layer),
        as in the paper; set 0 to disable.
    """

    def __init__(self, embedding_dim=128, dropout=0.3):
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(1, 96, 11, stride=4),
            nn.MaxPool2d(3, 2),
            *_conv_bn_relu(96, 256, 5, padding=2),
            nn.MaxPool2d(3, 2),
            nn.Dropout2d(dropout),
            *_conv_bn_relu(256, 384, 3, padding=1),
            *_conv_bn_relu(384, 256, 3, padding=1),
            nn.MaxPool2d(3, 2),
            nn.Dropout2d(dropout),
            nn.AdaptiveMaxPool2d((3, 5)),
        )
        self.embedding = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 3 * 5, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(min(1.0, dropout * 5 / 3)),
            nn.Linear(1024, embedding_dim),
        )
        self.feature_channels = 256


class CompactNet(_PooledBackbone):
    """A small convolutional network that trains in minutes on two CPU cores.

    The canvas is first averaged down by 2 (strokes survive as grey levels),
    then four convolution blocks widen 32 -> 256 channels while pooling, and
    the last map is pooled to a coarse 3 x 4 grid so that the embedding still
    knows where on the signature a stroke lies. About 8x fewer multiply-adds
    than :class:`SigNet` at 155 x 220.

    Parameters
    ----------
    embedding_dim : int, default=128
        Size of the output embedding.
    width : int, default=32
        Channels of the first block; later blocks use 2x, 4x and 8x.
    dropout : float, default=0.1
        Dropout before the last layer.
    """

    def __init__(self, embedding_dim=128, width=32, dropout=0.1):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.AvgPool2d(2),
            *_conv_bn_relu(1, w, 5, stride=2, padding=2),
            *_conv_bn_relu(w, 2 * w, 3, padding=1),
            nn.MaxPool2d(2),
            *_conv_bn_relu(2 * w, 4 * w, 3, padding=1),
            nn.MaxPool2d(2),
            *_conv_bn_relu(4 * w, 8 * w, 3, padding=1),
            nn.AdaptiveAvgPool2d((3, 4)),
        )
        self.embedding = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(8 * w * 3 * 4, embedding_dim),
        )
        self.feature_channels = 8 * w


#: Backbones known by name to :class:`~skseg.SiameseVerifier`.
BACKBONES = {"compact": CompactNet, "signet": SigNet}
