"""A network that sees the ink at the scale of the stroke.

:class:`~skseg.SiameseVerifier`'s network sees the whole signature fitted to a
155 x 220 canvas, so a scan's own resolution is lost; the stroke descriptors
(:mod:`skseg.strokes`) see the ink at the scan's resolution, but only through
hand-made histograms. :class:`PatchNet` sees small windows (``WINDOW`` x
``WINDOW`` pixels) of each scan's ink mask at the scale of the stroke (the median
stroke about 2 pixels wide), and learns to tell classes of images apart from
them: one class per writer and kind (genuine or forged), which
:func:`pair_classes` reads off labelled pairs without writer ids. A scan's
embedding (:func:`embed_masks`) is the mean of its windows' embeddings, and a
pair's distance (:func:`pair_distances`) the Euclidean distance between its two
scans' embeddings.

Only ink masks are used, never grey levels, which tell more about the paper and
the scanner than about the hand.
"""

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from torch import nn

__all__ = [
    "WINDOW",
    "MAX_WINDOWS",
    "AUGMENT_SOURCE",
    "random_windows",
    "warp_windows",
    "grid_windows",
    "PatchNet",
    "train_patch_net",
    "pool_windows",
    "embed_masks",
    "pair_distances",
    "pair_classes",
]

#: Side of a window, in pixels of the mask at the stroke's scale.
WINDOW = 32
#: Windows of a scan embedded for its pair distances, at most: a grid of
#: half-overlapping windows that hold ink, subsampled beyond this.
MAX_WINDOWS = 96
_BATCH = 256


#: Side of the windows an augmented training draws: room for a ``WINDOW`` cut
#: after any warp of :func:`warp_windows` (a cut's corner, slanted, turned and
#: zoomed out, lies at most 16 * |(1.2, 1)| * 1.25 = 31.2 pixels from the centre).
AUGMENT_SOURCE = 64
_MAX_ANGLE, _MAX_ZOOM, _MAX_SHEAR = 15.0, 1.25, 0.2


def _window(padded, y, x, size=WINDOW):
    """The ``size`` x ``size`` window centred on (y, x) of the unpadded mask."""
    return padded[y:y + size, x:x + size]


def _padded(mask, size=WINDOW):
    return np.pad(mask.astype(np.float32), size // 2)


def random_windows(mask, n, rng, size=WINDOW):
    """Windows centred on ink pixels drawn at random: what the network trains on.

    Parameters
    ----------
    mask : ndarray, shape (height, width)
        Ink mask (bool, or ink fractions in [0, 1]) with some ink.
    n : int
        Number of windows.
    rng : numpy.random.Generator
        Draws the centres.
    size : int, default=WINDOW
        Side of the windows (``AUGMENT_SOURCE`` for :func:`warp_windows`).

    Returns
    -------
    windows : ndarray of float32, shape (n, size, size)
        Zero-padded beyond the mask's edges.
    """
    ys, xs = np.nonzero(mask)
    picks = rng.integers(0, len(ys), n)
    padded = _padded(mask, size)
    return np.stack([_window(padded, ys[i], xs[i], size) for i in picks])


def warp_windows(windows, rng):
    """Each window turned, zoomed and slanted at random about its centre, cut to
    ``WINDOW`` x ``WINDOW``: the same hand written a little differently.

    Angles within 15 degrees, zooms within 1/1.25 .. 1.25 and horizontal shears
    (slant) within 0.2, each drawn per window; bilinear sampling
    (:func:`torch.nn.functional.grid_sample`).

    Parameters
    ----------
    windows : torch.Tensor, shape (n, 1, AUGMENT_SOURCE, AUGMENT_SOURCE)
        Windows drawn ``AUGMENT_SOURCE`` pixels wide, so that no cut reaches
        beyond them.
    rng : numpy.random.Generator
        Draws the angles, zooms and shears.

    Returns
    -------
    warped : torch.Tensor, shape (n, 1, WINDOW, WINDOW)
    """
    if windows.shape[-2:] != (AUGMENT_SOURCE, AUGMENT_SOURCE):
        raise ValueError(f"warp_windows: windows must be {AUGMENT_SOURCE} x {AUGMENT_SOURCE} "
                         f"pixels; got {tuple(windows.shape[-2:])}.")
    n = len(windows)
    angle = np.radians(rng.uniform(-_MAX_ANGLE, _MAX_ANGLE, n))
    zoom = np.exp(rng.uniform(-np.log(_MAX_ZOOM), np.log(_MAX_ZOOM), n))
    shear = rng.uniform(-_MAX_SHEAR, _MAX_SHEAR, n)
    cos, sin = np.cos(angle), np.sin(angle)
    # affine_grid maps each output position (in [-1, 1]) to the input's; the
    # output's WINDOW pixels span WINDOW / AUGMENT_SOURCE of the input's side.
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    linear = linear @ np.stack([np.stack([np.ones(n), shear], -1),
                                np.stack([np.zeros(n), np.ones(n)], -1)], 1)
    linear *= (WINDOW / AUGMENT_SOURCE / zoom)[:, None, None]
    theta = torch.from_numpy(np.concatenate([linear, np.zeros((n, 2, 1))], 2)).float()
    grid = F.affine_grid(theta, (n, 1, WINDOW, WINDOW), align_corners=False)
    return F.grid_sample(windows, grid, mode="bilinear", align_corners=False)


def grid_windows(mask, rng):
    """The windows a scan is embedded from: the same ones whatever else is embedded.

    Half-overlapping windows on a grid over the mask that hold at least 3 % ink
    (the window on the first ink pixel if none does), at most ``MAX_WINDOWS``
    (drawn at random beyond that).

    Parameters
    ----------
    mask : ndarray, shape (height, width)
        Ink mask (bool, or ink fractions in [0, 1]) with some ink.
    rng : numpy.random.Generator
        Draws the windows kept when there are more than ``MAX_WINDOWS``.

    Returns
    -------
    windows : ndarray of float32, shape (n_windows, WINDOW, WINDOW)
    """
    padded = _padded(mask)
    step = WINDOW // 2
    windows = [_window(padded, y, x) for y in range(step // 2, mask.shape[0], step)
               for x in range(step // 2, mask.shape[1], step)]
    windows = [w for w in windows if w.mean() >= 0.03] or [_window(padded, *np.argwhere(mask)[0])]
    windows = np.stack(windows)
    if len(windows) > MAX_WINDOWS:
        windows = windows[rng.choice(len(windows), MAX_WINDOWS, replace=False)]
    return windows


class PatchNet(nn.Module):
    """A small CNN of ``WINDOW`` x ``WINDOW`` ink windows.

    Three blocks of two 3 x 3 convolutions (``width``, 2x and 4x channels), max
    pooling between them, global average pooling: ``features`` gives an
    embedding of ``4 * width`` numbers; ``head`` classifies it during training
    only.

    Parameters
    ----------
    n_classes : int
        Classes the head tells apart.
    width : int, default=16
        Channels of the first block.
    """

    def __init__(self, n_classes, width=16):
        super().__init__()
        layers, channels = [], 1
        for block, out in enumerate((width, 2 * width, 4 * width)):
            for _ in range(2):
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False),
                           nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
            layers.append(nn.MaxPool2d(2) if block < 2 else nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(channels, n_classes)

    def forward(self, x):
        return self.head(self.features(x))


def _check_training_set(masks, labels):
    if len(masks) != len(labels):
        raise ValueError(f"train_patch_net: masks and labels differ in length "
                         f"({len(masks)} and {len(labels)}).")
    for k, mask in enumerate(masks):
        if mask is None or not np.any(mask):
            raise ValueError(f"train_patch_net: the mask at position {k} has no ink "
                             f"({'None' if mask is None else 'all zero'}); train on "
                             f"masks with ink only.")
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise ValueError(f"train_patch_net: needs at least 2 distinct labels; "
                         f"got {n_classes}.")


def train_patch_net(masks, labels, *, epochs=6, windows_per_image=32, lr=2e-3, augment=False,
                    seed=0, device="cpu", verbose=False):
    """A :class:`PatchNet` trained to tell the masks' labels apart from their windows.

    Each epoch draws ``windows_per_image`` :func:`random_windows` of each mask
    (on the CPU, with numpy) and trains on them in shuffled batches
    (cross-entropy, AdamW with a one-cycle schedule).

    Parameters
    ----------
    masks : sequence of ndarray, shape (height, width)
        Ink masks at the stroke's scale, each with some ink.
    labels : array-like, shape (n_masks,)
        A class per mask, any sortable values (at least two distinct ones).
    epochs : int, default=6
        Passes over freshly drawn windows.
    windows_per_image : int, default=32
        Windows drawn from each mask per epoch.
    lr : float, default=2e-3
        Peak learning rate.
    augment : bool, default=False
        Draw the windows ``AUGMENT_SOURCE`` pixels wide and train on them
        :func:`warp_windows`-ed: rotated, zoomed and slanted at random.
    seed : int, default=0
        Seeds the windows, their order and the initial weights (``torch.manual_seed``).
    device : str or torch.device, default="cpu"
        Where the network and each batch go.
    verbose : bool, default=False
        Print each epoch's mean loss.

    Returns
    -------
    net : PatchNet
        On ``device``, in eval mode.
    """
    _check_training_set(masks, labels)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    classes, target = np.unique(labels, return_inverse=True)
    net = PatchNet(len(classes)).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    n_windows = len(masks) * windows_per_image
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, lr, total_steps=epochs * -(-n_windows // _BATCH))
    windows_target = torch.from_numpy(np.repeat(target.ravel(), windows_per_image))
    size = AUGMENT_SOURCE if augment else WINDOW
    net.train()
    for epoch in range(epochs):
        windows = torch.from_numpy(np.concatenate(
            [random_windows(m, windows_per_image, rng, size) for m in masks]))[:, None]
        if augment:
            windows = warp_windows(windows, rng)
        order = torch.from_numpy(rng.permutation(n_windows))
        total = 0.0
        for start in range(0, n_windows, _BATCH):
            batch = order[start:start + _BATCH]
            loss = F.cross_entropy(net(windows[batch].to(device)),
                                   windows_target[batch].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        if verbose:
            print(f"    epoch {epoch + 1}/{epochs}: loss {total / n_windows:.3f}", flush=True)
    return net.eval()


def pool_windows(window_embeddings):
    """A scan's embedding from its windows': the L2-normalised mean of their
    L2-normalised embeddings, over the second-to-last axis.

    Parameters
    ----------
    window_embeddings : torch.Tensor, shape (..., n_windows, n_features)
        ``PatchNet.features`` of each window, per scan.

    Returns
    -------
    embedding : torch.Tensor, shape (..., n_features)
    """
    return F.normalize(F.normalize(window_embeddings, dim=-1).mean(-2), dim=-1)


def embed_masks(net, masks, *, seed=None, device="cpu"):
    """One embedding per mask: the mean of its windows' embeddings.

    Parameters
    ----------
    net : PatchNet
        A trained network (see :func:`train_patch_net`), on ``device``.
    masks : sequence of ndarray or None
        Ink masks at the stroke's scale; None (or a mask without ink) for a scan
        without ink.
    seed : int or None, default=None
        Draws the :func:`grid_windows` kept beyond ``MAX_WINDOWS``. None: a fresh
        generator seeded 0 per mask, so that a mask's row does not depend on the
        masks embedded with it (as at prediction time). An int: one generator
        shared by the masks in order.
    device : str or torch.device, default="cpu"
        Where the windows go.

    Returns
    -------
    rows : ndarray of float64, shape (n_masks, net.head.in_features)
        Each row its windows' ``net.features``, :func:`pool_windows`-ed; NaN
        for a scan without ink.
    """
    shared = None if seed is None else np.random.default_rng(seed)
    rows = np.full((len(masks), net.head.in_features), np.nan)
    with torch.no_grad():
        for k, mask in enumerate(masks):
            if mask is None or not np.any(mask):
                continue
            rng = np.random.default_rng(0) if shared is None else shared
            windows = torch.from_numpy(grid_windows(mask, rng))[:, None].to(device)
            rows[k] = pool_windows(net.features(windows)).cpu().numpy()
    return rows


def pair_distances(rows, pairs):
    """Euclidean distance between the two rows each pair names.

    Parameters
    ----------
    rows : ndarray, shape (n_images, n_features)
        Embeddings, as :func:`embed_masks` gives them.
    pairs : array-like of int, shape (n_pairs, 2)
        Row positions.

    Returns
    -------
    distances : ndarray, shape (n_pairs,)
        NaN where a row is.
    """
    pairs = np.asarray(pairs, dtype=np.int64)
    return np.linalg.norm(rows[pairs[:, 0]] - rows[pairs[:, 1]], axis=1)


def pair_classes(pairs, target, n_images):
    """The classes the patch network trains on, read off labelled pairs.

    A verifier is given pairs and their labels, not writer ids; the classes
    writer x genuine/forged follow from them:

    - the connected components of the graph of genuine pairs are the writers:
      the images of each component (those in some genuine pair) form its
      genuine class;
    - an image in no genuine pair is a forgery: when all its forged pairs'
      partners that lie in genuine pairs lie in one component, it goes to that
      component's forged class (one per such component, distinct from its
      genuine class);
    - every other image gets -1 (not trained on): an image in no pair, a forgery
      paired with images of several components, or only with images in no
      genuine pair.

    With the pairs of :func:`skseg.datasets.make_pairs` (all genuine pairs of
    each writer, forgeries against the writer's genuine images, random forgeries
    between genuine images) this is the writer x genuine/forged partition of the
    images that appear in pairs.

    Parameters
    ----------
    pairs : array-like of int, shape (n_pairs, 2)
        Image positions, in ``0 .. n_images - 1``.
    target : array-like, shape (n_pairs,)
        1 for a genuine pair, 0 for a forged pair.
    n_images : int
        Number of images.

    Returns
    -------
    classes : ndarray of int64, shape (n_images,)
        Classes numbered 0 .. k - 1 (components in the order of their first
        image, each one's genuine class before its forged one), -1 for images
        not trained on.

    Examples
    --------
    Images 0, 1 and 2, 3 are two writers' genuine signatures, 4 forges the
    first writer, 5 is paired with both writers and 6 with none:

    >>> pair_classes([(0, 1), (2, 3), (0, 4), (1, 4), (0, 5), (2, 5)],
    ...              [1, 1, 0, 0, 0, 0], n_images=7)
    array([ 0,  0,  2,  2,  1, -1, -1])
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    target = np.asarray(target).ravel()
    if len(target) != len(pairs):
        raise ValueError(f"pair_classes: pairs and target differ in length "
                         f"({len(pairs)} and {len(target)}).")
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n_images):
        raise ValueError(f"pair_classes: pair positions must lie in 0..{n_images - 1}.")
    genuine = target > 0.5
    positive = pairs[genuine]
    graph = coo_matrix((np.ones(len(positive)), (positive[:, 0], positive[:, 1])),
                       shape=(n_images, n_images))
    _, component = connected_components(graph, directed=False)
    in_genuine = np.zeros(n_images, dtype=bool)
    in_genuine[positive.ravel()] = True
    # Per image, the components of its forged pairs' partners that are in genuine pairs.
    partners = {}
    for a, b in pairs[~genuine]:
        for image, partner in ((a, b), (b, a)):
            if not in_genuine[image] and in_genuine[partner]:
                partners.setdefault(image, set()).add(component[partner])
    # Keys 2 c (genuine of component c) and 2 c + 1 (forged of c), -1 for none.
    key = np.where(in_genuine, 2 * component, -1)
    for image, components in partners.items():
        if len(components) == 1:
            key[image] = 2 * next(iter(components)) + 1
    classes = np.full(n_images, -1, dtype=np.int64)
    kept = key >= 0
    classes[kept] = np.unique(key[kept], return_inverse=True)[1].ravel()
    return classes
