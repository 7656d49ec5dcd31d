"""Accuracy ablations on one writer fold: what moves the held-out EER, and what does not.

Each run is :func:`skseg.evaluation.cross_validate_writers` on one fold (same
test writers, same pairs as ``skseg benchmark``), with the default verifier
changed in one respect. The verifier's seed (``--seeds``) also draws which
training writers it holds out for validation: seed 0 is ``skseg benchmark``'s
default exactly, other seeds train on and validate with other writers.

- ``defaults``: nothing changed; with several ``--seeds`` the script also
  scores the *ensemble* of the seeds' models: the mean decision value per test
  pair, each model's values divided first by their standard deviation over
  the test pairs (``ensemble``; no labels used), and without that division
  (``ensemble_unscaled``, the only form before 2026-11-23, where one model
  with larger distances could outweigh the others).
- ``swa``: stochastic weight averaging (``torch.optim.swa_utils``) of the
  weights after each epoch from ``--swa-start`` on, with BatchNorm statistics
  recomputed on the training images at the end.
- ``synthetic-writers``: ``--synthetic-writers`` writers of
  :func:`skseg.datasets.make_synthetic_signatures` (24 genuine, 24 forgeries
  each) added to training through ``extra_training``.
- ``mirrored-writers``: the fold's training writers mirrored left to right,
  added to training as new writers (a mirrored writer is a different "hand").
- ``writer-pieces``: each writer's images (with its forgeries) cut, anew each
  epoch, into random pieces of at most ``--piece-size`` images, shuffled
  together, so that a batch of 128 holds pieces of up to 8 writers (CEDAR: 2
  or 3 whole writers otherwise) and its random forgeries come from more
  hands. Labelled pairs split between two batches sit out that epoch; the
  pairs implied within each batch stand in for them, so an epoch costs the
  same.
- ``elastic``: the default affine jitter plus a smooth random displacement of
  each training canvas (Simard et al., 2003): offsets drawn at control points
  ``--elastic-spacing`` pixels apart, with a standard deviation of
  ``--elastic-amplitude`` pixels, interpolated bicubically over the canvas; one
  ``grid_sample`` per batch, as the default augmentation.
- ``tta``: test-time augmentation. Training is the default; every embedding
  outside training (validation writers, test writers) is the renormalised
  mean of the embeddings of the canvas and of ``--tta-views`` - 1 jittered
  copies (the training jitter, drawn from a fixed seed, so each canvas gets
  the same views in every call; the validation loss skorch reports each
  epoch uses one view). The run also scores the test pairs of the
  same model with one view (``one_view``; its size weight was chosen with
  the averaged views).
- ``image-scale``: the network also gives each image a learned log-scale
  ``t`` (its last output); a pair's distance is the plain one times
  ``exp(-(t1 + t2) / 2)``, so that signatures their writers vary a lot can
  widen their own distances and one threshold fits writers of different
  steadiness (the gap between the single-threshold EER and the mean of the
  writers' own EERs, which every run also reports).
- ``fine-local``: local matching (weight 0.5) on the finer feature map of
  :class:`~skseg.nn.CompactNet`'s third block (19 x 27 positions and 128
  channels at 155 x 220, before its second max-pool) instead of the last one
  (9 x 13); ``--params '{"module__local_reach": 2}'`` lets a match move about
  as far on the canvas as reach 1 does on the last map.
- ``cosine-lr``: the learning rate falls from ``lr`` to 0 along a half cosine
  over the ``max_epochs`` epochs (skorch's ``LRScheduler`` with
  ``CosineAnnealingLR``, one step per epoch) instead of staying constant.
- ``cohort-norm``: training unchanged; each pair's full distance (network,
  size and stroke terms, as the threshold sees it) is standardised
  (:func:`score_norm`) by its images' full distances to a cohort of 400 of
  the fold's training images: both images' (s-norm) or the reference's
  (z-norm), to the whole cohort or to each image's 50 nearest
  (:data:`COHORT_NORMS`). Each normalisation has its own validation-writer
  EER, and the same model's test pairs are scored each way and raw
  (``norms``). Before 2026-11-25 the network's distance alone was
  normalised, each normalisation with a size weight of its own, and the
  stroke term was left out.
- ``shared-split``: every seed holds out seed 0's validation writers, so seeds
  differ only in initial weights and batch order; with several ``--seeds`` the
  ensemble also gets a validation-writer EER (its mean decision value on those
  writers' pairs), comparable to seed 0's alone.
- ``pretrained``: the verifier is first trained on every writer of another
  corpus (``--pretrain-data``; its SigNet pairs, with ``--pretrain-params``,
  no validation writers held out by default as its threshold is never used),
  then fine-tuned on the fold's training writers from those weights
  (``warm_start=True``, with ``--params``). The seed is the same for both fits,
  so the fine-tuning holds out the defaults' validation writers. With
  ``--pretrained-cache DIR`` the pretrained model of each seed is saved there
  (``skseg.save``) and reused by the other folds' runs. With ``--freeze
  PATTERN ...`` the parameters whose names match (``fnmatch``, as
  ``verifier.net_.get_all_learnable_params()`` names them, e.g.
  ``'backbone.features.[1-5].*'`` for :class:`~skseg.nn.CompactNet`'s first two
  blocks) keep their pretrained values in fine-tuning (skorch's ``Freezer``;
  batch-norm running statistics still follow the fold's images).

The verifier's default local matching (``local_weight="auto"``) came after
these settings were measured. ``tta``, ``writer-classes`` and
``image-scale`` replace or read the global embedding, so they run with
``local_weight=0``; the others run with today's defaults.

The EER needs no threshold, so every figure is threshold-free except FAR/FRR,
which are not reported here. One fold moves by several points between seeds:
compare settings over the same seeds, and confirm anything promising on all
folds with ``skseg benchmark``.

    python bench/ablations.py ../shared/data/cedar --setting defaults --seeds 0 1 2
    python bench/ablations.py ../shared/data/cedar --setting swa
    python bench/ablations.py ../shared/data/cedar --setting writer-pieces --fold 1
    python bench/ablations.py ../shared/data/cedar --setting elastic --elastic-amplitude 2
    python bench/ablations.py ../shared/data/cedar --setting tta --tta-views 8
    python bench/ablations.py ../shared/data/cedar --setting writer-classes --class-weight 0.1
    python bench/ablations.py ../shared/data/cedar --setting image-scale
    python bench/ablations.py ../shared/data/sigcomp2011_dutch --setting fine-local \
        --params '{"module__local_reach": 2}'
    python bench/ablations.py ../shared/data/sigcomp2011_dutch --setting cosine-lr
    python bench/ablations.py ../shared/data/sigcomp2011_dutch --setting cohort-norm
    python bench/ablations.py ../shared/data/sigcomp2011_dutch --setting shared-split \
        --seeds 0 1 --params '{"max_epochs": 10}'
    python bench/ablations.py ../shared/data/sigcomp2011_dutch --setting pretrained \
        --pretrain-data ../shared/data/cedar --pretrained-cache /tmp/skseg-pretrained
    python bench/ablations.py ../shared/data/cedar --setting pretrained \
        --pretrain-data ../shared/data/sigcomp2011_dutch --params '{"lr": 3e-4, "max_epochs": 10}' \
        --freeze 'backbone.features.[1-5].*'
"""

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler
from torch.nn import functional as F
from sklearn.model_selection import GroupKFold
from sklearn.utils import Bunch, check_random_state, column_or_1d
from sklearn.utils.validation import check_is_fitted
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.optim.swa_utils import AveragedModel

import skseg
from skseg import SiameseVerifier, SignaturePreprocessor
from skseg._image import load_grayscale
from skseg._pairs import PairedCanvases, as_bank
from skseg.datasets import load_signatures, make_synthetic_signatures
from skseg.datasets._pairs import _items_of
from skseg.evaluation import _extra_corpus, _fold_metrics, _pretrain, cross_validate_writers
from skseg.metrics import equal_error_rate
from skseg.nn import CompactNet, SiameseModule, SiameseNet
from skseg.nn.batching import PairBatches, pack_pieces
from skseg.nn.losses import ContrastiveLoss
from skseg.nn.net import freezer
from skseg.nn.siamese import random_affine, random_affine_grid
from skseg.verifier import _equal_error_rate

SETTINGS = ("defaults", "swa", "synthetic-writers", "mirrored-writers", "writer-pieces",
            "elastic", "tta", "writer-classes", "image-scale", "fine-local",
            "cosine-lr", "cohort-norm", "shared-split", "pretrained")

#: Settings whose module or loss works on the global embedding alone: they run with
#: ``local_weight=0``, the default when they were measured, unless ``--params`` says.
MODULE_SETTINGS = ("tta", "writer-classes", "image-scale")


class WeightAveraging(Callback):
    """Stochastic weight averaging from epoch ``start`` (1-based) to the end of training."""

    def __init__(self, start=10):
        self.start = start

    def initialize(self):
        self.average_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) < self.start:
            return
        if self.average_ is None:
            self.average_ = AveragedModel(net.module_)
        # The first update copies the weights; later ones average them in.
        self.average_.update_parameters(net.module_)

    def on_train_end(self, net, X=None, **kwargs):
        if self.average_ is None:
            return
        net.module_.load_state_dict(self.average_.module.state_dict())
        # Averaged weights need BatchNorm statistics of their own: one pass in
        # training mode over the training images, with a cumulative average.
        norms = [m for m in net.module_.modules() if isinstance(m, _BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        used = torch.as_tensor(np.unique(X.pairs), device=X.images.device)
        net.module_.train()
        with torch.no_grad():
            for chunk in torch.split(used, net.batch_size):
                net.module_(X.images[chunk])
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


class WriterPieces(PairBatches):
    """Training batches packed from writers' pieces of at most ``piece_size`` images,
    shuffled together (two pieces of one writer may still meet in a batch)."""

    def __init__(self, dataset, batch_size, piece_size, **kwargs):
        super().__init__(dataset, batch_size, **kwargs)
        self.piece_size = piece_size

    def _image_batches(self, rng):
        pieces = []
        order = rng.permutation(len(self._clusters)) if self.shuffle else range(len(self._clusters))
        for c in order:
            members = rng.permutation(self._clusters[c]) if self.shuffle else self._clusters[c]
            pieces += np.array_split(members, int(np.ceil(len(members) / self.piece_size)))
        if self.shuffle:
            pieces = [pieces[i] for i in rng.permutation(len(pieces))]
        return pack_pieces(pieces, self.batch_size)

    def _split_pairs_to_train(self, pair_ids):
        # Pairs between two writers' clusters (none from make_pairs) still train; pairs
        # between two pieces of one writer sit out this epoch.
        pairs = self.dataset.pairs[pair_ids]
        return pair_ids[self._cluster_of[pairs[:, 0]] != self._cluster_of[pairs[:, 1]]]


def writer_pieces_verifier(piece_size):
    """A SiameseVerifier class (clone keeps it) whose net trains on writers' pieces."""

    class WriterPiecesNet(SiameseNet):
        training_batches = partial(WriterPieces, piece_size=piece_size)

    class WriterPiecesVerifier(SiameseVerifier):
        def _build_net(self, valid=None, seed=None, accelerator=None):
            if accelerator is not None:
                raise ValueError("the writer-pieces setting does not train through accelerate.")
            return WriterPiecesNet(**self._net_kwargs(valid, seed))

    return WriterPiecesVerifier


def elastic_displacement(shape, amplitude, spacing, device=None, generator=None):
    """Smooth random offsets ``(n, H, W, 2)`` in grid_sample's [-1, 1] units: normal
    offsets of ``amplitude`` pixels at control points ``spacing`` pixels apart,
    interpolated bicubically."""
    n, _, height, width = shape
    rows, cols = int(np.ceil(height / spacing)) + 1, int(np.ceil(width / spacing)) + 1
    knots = torch.randn(n, 2, rows, cols, device=device, generator=generator) * amplitude
    field = F.interpolate(knots, size=(height, width), mode="bicubic", align_corners=True)
    # Channel 0 moves along x (width), channel 1 along y (height); pixels -> [-1, 1].
    scale = torch.tensor([2.0 / width, 2.0 / height], device=device).view(1, 2, 1, 1)
    return (field * scale).permute(0, 2, 3, 1)


def module_verifier(module):
    """A SiameseVerifier class (clone keeps it) whose network is ``module``."""

    class ModuleVerifier(SiameseVerifier):
        def _net_kwargs(self, valid, seed):
            return {**super()._net_kwargs(valid, seed), "module": module}

    return ModuleVerifier


def elastic_verifier(amplitude, spacing):
    """A SiameseVerifier class (clone keeps it) that augments with affine + elastic warps."""

    class ElasticModule(SiameseModule):
        def augment_batch(self, x):
            grid = random_affine_grid(x.shape, device=x.device, dtype=x.dtype)
            grid = grid + elastic_displacement(x.shape, amplitude, spacing, device=x.device)
            return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)

    return module_verifier(ElasticModule)


def image_scale_verifier():
    """A SiameseVerifier class whose network also gives each image a learned scale.

    The backbone's last output is a log-scale ``t``, the others (``embedding_dim``
    - 1) the embedding; the distance of a pair is the plain distance times
    ``exp(-(t1 + t2) / 2)``, so a signature that its writer varies a lot can
    widen its own genuine distances, and one threshold can fit writers of
    different steadiness.
    """

    class ImageScaleModule(SiameseModule):
        def embed_float(self, x):
            out = self.backbone(x.contiguous(memory_format=self.memory_format)).float()
            embedding = F.normalize(out[:, :-1], dim=1) if self.normalize else out[:, :-1]
            # A log-scale, kept in [-3, 3] so no image can make its distances vanish.
            return torch.cat([embedding, out[:, -1:].clamp(-3.0, 3.0)], dim=1)

        def pair_distance(self, e1, e2):
            plain = super().pair_distance(e1[:, :-1], e2[:, :-1])
            return plain * torch.exp(-(e1[:, -1] + e2[:, -1]) / 2)

    return module_verifier(ImageScaleModule)


class FineCompactNet(CompactNet):
    """CompactNet whose feature map for local matching is its third block's.

    The embedding is CompactNet's own; only the map the local distance reads
    moves one block earlier (twice as fine along each axis, 128 channels).
    """

    # features[:FINE] ends with the third block's ReLU, before a max-pool.
    FINE = 11

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.feature_channels = self.features[self.FINE - 3].out_channels

    def forward_features(self, x):
        fine = self.features[: self.FINE](x)
        return fine, self.embedding(self.features[self.FINE:](fine))


def tta_verifier(views, plain_decisions=None):
    """A SiameseVerifier class whose embeddings outside training average ``views`` views.

    Each ``decision_function`` call also scores the pairs with one view (the
    plain embedding) and appends that to ``plain_decisions``, if given: the
    same model with and without test-time augmentation.
    """

    class TTAModule(SiameseModule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.views = views

        def embed_float(self, x):
            if self.training:
                return super().embed_float(x)
            # A fixed seed: a canvas gets the same views whichever call embeds it.
            generator = torch.Generator(device=x.device).manual_seed(0)
            total = super().embed_float(x)
            for _ in range(self.views - 1):
                total = total + super().embed_float(random_affine(x, generator=generator))
            return F.normalize(total, dim=1) if self.normalize else total / self.views

    class OneViewWhileTraining(Callback):
        # skorch's per-epoch validation loss needs no averaged views (it only reports).
        def on_train_begin(self, net, **kwargs):
            net.module_.views = 1

        def on_train_end(self, net, **kwargs):
            net.module_.views = views

    class TTAVerifier(module_verifier(TTAModule)):
        def _net_kwargs(self, valid, seed):
            kwargs = super()._net_kwargs(valid, seed)
            kwargs["callbacks"] = [*kwargs["callbacks"], ("one_view", OneViewWhileTraining())]
            return kwargs

        def decision_function(self, X):
            if plain_decisions is not None:
                self.net_.module_.views = 1
                try:
                    plain_decisions.append(super().decision_function(X))
                finally:
                    self.net_.module_.views = views
            return super().decision_function(X)

    return TTAVerifier


#: Score normalisations of ``cohort-norm``: the pair's sides whose distances to the
#: cohort standardise it (both: s-norm; the reference alone: z-norm), and how many
#: of each image's nearest cohort images count (None: the whole cohort).
COHORT_NORMS = {"s-norm": ((0, 1), None), "s-norm, 50 nearest": ((0, 1), 50),
                "z-norm": ((0,), None), "z-norm, 50 nearest": ((0,), 50)}


def _images_of(X):
    """The images ``X``'s pairs use, with what each carries (sizes, strokes, masks),
    as a PairedCanvases pairing each with itself; and ``X``'s pairs as rows of it."""
    if not isinstance(X, PairedCanvases):
        raise TypeError("cohort-norm scores the verifier's full distance, which needs "
                        "the pairs as a PairedCanvases (SignaturePreprocessor's output); "
                        f"got {type(X).__name__}.")
    used, pairs = np.unique(X.index, return_inverse=True)
    carried = (None if a is None else a[used] for a in (X.sizes, X.strokes, X.masks))
    itself = np.repeat(np.arange(len(used)), 2).reshape(-1, 2)
    return PairedCanvases(X.images[used], itself, *carried), pairs.reshape(X.index.shape)


def paired_with_cohort(images, cohort):
    """Each of ``images`` (a PairedCanvases from :func:`_images_of`) paired with each
    of ``cohort`` (another), image first: ``n * c`` pairs, image by image."""
    n, c = len(images.images), len(cohort.images)
    index = np.stack([np.repeat(np.arange(n), c), n + np.tile(np.arange(c), n)], axis=1)
    both = [None if a is None or b is None else np.concatenate([a, b])
            for a, b in zip((images.sizes, images.strokes, images.masks),
                            (cohort.sizes, cohort.strokes, cohort.masks))]
    return PairedCanvases(np.concatenate([images.images, cohort.images]), index, *both)


def score_norm(distances, pairs, to_cohort, sides=(0, 1), nearest=None):
    """Cohort score normalisation of pair distances.

    Each pair's distance is standardised by the mean and SD of the distances
    from its image on each of ``sides`` (0: the reference, 1: the questioned)
    to the cohort (``to_cohort``, one row per image; or to its ``nearest``
    cohort images), and the z-scores are averaged: both sides is s-norm, the
    reference alone z-norm. A reference whose every distance runs large no
    longer reads as a forgery for that alone. Also returns the mean of the
    images' means and SDs, the cohort's scale.
    """
    if nearest is not None:
        to_cohort = to_cohort.topk(min(nearest, to_cohort.shape[1]), dim=1, largest=False).values
    mean, sd = to_cohort.mean(1), to_cohort.std(1)
    z = sum((distances - mean[pairs[:, side]]) / sd[pairs[:, side]] for side in sides)
    return z / len(sides), (float(mean.mean()), float(sd.mean()))


def fit_split(verifier, index, target, n_images, seed=None):
    """The training and validation rows ``fit`` drew with random_state ``seed``
    (the verifier's own by default): the first draw seeds torch, the split follows."""
    rng = check_random_state(verifier.random_state if seed is None else seed)
    rng.randint(np.iinfo(np.int32).max)
    return SiameseVerifier._validation_split(verifier, index, target, n_images, rng)


def shared_split_verifier(validation_scores, split_seed=0):
    """A SiameseVerifier class that holds out the validation writers seed
    ``split_seed`` draws, whatever its ``random_state``: seeds then differ only in
    initial weights and batch order, and their models' ensemble has validation
    writers of its own. ``validation_scores`` gets each fit's validation pairs
    (``y``, ``decision``).
    """

    class SharedSplitVerifier(SiameseVerifier):
        def _validation_split(self, index, target, n_images, rng):
            return fit_split(self, index, target, n_images, seed=split_seed)

        def fit(self, X, y):
            super().fit(X, y)
            bank, index = as_bank(X)
            target = (column_or_1d(y) == self.classes_[1]).astype(int)
            _, valid_idx = self._validation_split(index, target, len(bank), None)
            validation_scores.append({"y": target[valid_idx],
                                      "decision": self.decision_function(X[valid_idx])})
            return self

    return SharedSplitVerifier


#: What pretraining changes from the defaults unless ``--pretrain-params`` says:
#: every writer of the other corpus trains (its threshold is never used).
PRETRAIN_DEFAULTS = {"validation_fraction": 0.0}


def pretrain(data, other, seed, params=None, preprocessor=None, cache=None):
    """A verifier trained on every writer of ``other`` (a corpus whose writers are
    not those of ``data``), with ``random_state=seed``; saved to and reused from
    ``cache/pretrained_seed<seed>.safetensors`` when ``cache`` is given (keyed by the
    seed alone: keep one folder per other corpus and pretraining setting)."""
    path = None if cache is None else Path(cache) / f"pretrained_seed{seed}.safetensors"
    if path is not None and path.exists():
        return skseg.load(path)
    # Refuses a corpus that shares files with data.
    other = _extra_corpus(other, _items_of(data)[0], name="pretrain_data")
    preprocessor = SignaturePreprocessor() if preprocessor is None else preprocessor
    params = {**PRETRAIN_DEFAULTS, **(params or {}), "random_state": seed}
    # What cross_validate_writers(pretrain_data=...) does, kept here across processes.
    verifier = _pretrain(SiameseVerifier(**params), other, preprocessor, random_state=0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        skseg.save(verifier, path)
    return verifier


def pretrained_verifier(pretrained):
    """A SiameseVerifier class whose every fit starts from ``pretrained``'s weights
    (``warm_start``; a clone would start from new ones)."""

    class PretrainedVerifier(SiameseVerifier):
        def fit(self, X, y):
            self.net_ = pretrained.net_
            return super().fit(X, y)

    return PretrainedVerifier


def cohort_norm_verifier(records, cohort_size=400):
    """A SiameseVerifier class that normalises its distances against a cohort of
    ``cohort_size`` of its training images (:data:`COHORT_NORMS`).

    The network, its training and every weight (size, stroke, patch) are the
    defaults'; what is normalised is the verifier's full distance, the one its
    threshold applies to, of each pair and of each image to each cohort image.
    The first normalisation sets the threshold. ``records["validation"]`` gets
    each normalisation's validation-writer EER and ``records["test"]`` the
    decision values of each on the pairs scored last, both with ``"raw"``, the
    same model without normalisation.
    """

    class CohortNormVerifier(SiameseVerifier):
        def fit(self, X, y):
            super().fit(X, y)
            records["validation"] = {"raw": self.validation_eer_}
            bank, index = as_bank(X)
            target = (column_or_1d(y) == self.classes_[1]).astype(np.float32)
            train_idx, valid_idx = fit_split(self, index, target, len(bank))
            cohort, _ = _images_of(X[train_idx])
            pick = np.sort(check_random_state(0).choice(
                len(cohort.images), min(cohort_size, len(cohort.images)), replace=False))
            # Its self-pairs (image k with image k) of the picked rows: those images alone.
            self.cohort_ = _images_of(PairedCanvases(
                cohort.images, cohort.index[pick], cohort.sizes, cohort.strokes,
                cohort.masks))[0]

            raw, to_cohort, pairs = self._raw_and_cohort(X[valid_idx])
            target = torch.as_tensor(target[valid_idx], device=raw.device)
            self.norm_scale_, distances = {}, {}
            for name, (sides, nearest) in COHORT_NORMS.items():
                z, self.norm_scale_[name] = score_norm(raw, pairs, to_cohort, sides, nearest)
                distances[name] = self._in_raw_units(z, name)
                records["validation"][name] = _equal_error_rate(target, distances[name])
            main = next(iter(COHORT_NORMS))
            self.validation_eer_ = records["validation"][main]
            self._calibrate(distances[main], target, self.threshold_strategy,
                            self.threshold_target, choose=self.threshold == "auto")
            return self

        def _raw_and_cohort(self, X):
            """The pairs' full distances, each used image's full distances to the
            cohort ``(n, c)``, and the pairs as rows of those images."""
            raw = super()._distances(X, numpy=False)
            images, pairs = _images_of(X)
            to_cohort = super()._distances(paired_with_cohort(images, self.cohort_),
                                           numpy=False)
            return raw, to_cohort.view(len(images.images), -1), pairs

        def _in_raw_units(self, z, name):
            mean, sd = self.norm_scale_[name]
            return mean + sd * z

        def _distances(self, X, numpy=True):
            check_is_fitted(self)
            raw, to_cohort, pairs = self._raw_and_cohort(X)
            distances = {"raw": raw}
            for name, (sides, nearest) in COHORT_NORMS.items():
                z, _ = score_norm(raw, pairs, to_cohort, sides, nearest)
                distances[name] = self._in_raw_units(z, name)
            records["test"] = {name: -d.double().cpu().numpy() for name, d in distances.items()}
            main = distances[next(iter(COHORT_NORMS))].double()
            return main.cpu().numpy() if numpy else main

    return CohortNormVerifier


class WriterClassBatches(PairBatches):
    """Training batches that also carry each image's writer class (``y["image_class"]``).

    Classes come from the clusters and genuine flags PairBatches already holds:
    ``2 c`` for a genuine image of writer ``c`` (a genuine-pair cluster),
    ``2 c + 1`` for a forgery paired with that writer, -1 for images in no pair.
    """

    def __init__(self, dataset, batch_size, **kwargs):
        super().__init__(dataset, batch_size, **kwargs)
        used = np.unique(dataset.pairs)
        writers, writer_of_used = np.unique(self._cluster_of[used], return_inverse=True)
        self.image_class = np.full(len(dataset.images), -1, dtype=np.int64)
        self.image_class[used] = 2 * writer_of_used + ~self._genuine[used]
        self.n_classes = 2 * len(writers)

    def plan_epoch(self):
        self._plan_in_use = super().plan_epoch()
        return self._plan_in_use

    def __iter__(self):
        # PairBatches.__iter__ plans the epoch before its first batch.
        for i, (X, y) in enumerate(super().__iter__()):
            images = self._plan_in_use[i][0]
            y["image_class"] = torch.from_numpy(self.image_class[images]).to(X["images"].device)
            yield X, y


class WriterClassLoss(ContrastiveLoss):
    """The contrastive pair loss, and a CosFace classification of images into their
    writer classes against learned class vectors (set by :meth:`set_classes`)."""

    def __init__(self, margin=1.0, pos_weight=1.0, neg_weight=1.0, embedding_dim=128,
                 weight=0.1, scale=16.0, class_margin=0.2):
        super().__init__(margin, pos_weight, neg_weight)
        self.embedding_dim = embedding_dim
        self.weight = weight
        self.scale = scale
        self.class_margin = class_margin
        self.class_vectors = None

    def set_classes(self, n_classes, device):
        self.class_vectors = torch.nn.Parameter(
            torch.randn(n_classes, self.embedding_dim, device=device))

    def classification_loss(self, embeddings, image_class):
        cos = F.normalize(embeddings, dim=1) @ F.normalize(self.class_vectors, dim=1).T
        margin = self.class_margin * F.one_hot(image_class, len(self.class_vectors))
        return self.weight * F.cross_entropy(self.scale * (cos - margin), image_class)


def writer_classes_verifier(weight, scale, class_margin):
    """A SiameseVerifier class (clone keeps it) trained with :class:`WriterClassLoss`."""

    class WriterClassNet(SiameseNet):
        training_batches = WriterClassBatches  # validation pairs: the pair loss alone

        def partial_fit(self, X, y=None, **fit_params):
            # The classes are the training writers': known only now, so the
            # optimizer is made again to take their vectors in.
            n_classes = self.get_iterator(X, training=True).n_classes
            self.criterion_.set_classes(n_classes, self.device)
            self.initialize_optimizer()
            return super().partial_fit(X, y, **fit_params)

        def get_loss(self, y_pred, y_true, X=None, training=False):
            loss = super().get_loss(y_pred, y_true, X, training)
            if "image_class" in y_true:
                loss = loss + self.criterion_.classification_loss(y_pred, y_true["image_class"])
            return loss

    class WriterClassVerifier(SiameseVerifier):
        def _build_net(self, valid=None, seed=None, accelerator=None):
            if accelerator is not None or self.loss != "contrastive":
                raise ValueError("the writer-classes setting trains the contrastive loss, "
                                 "without accelerate.")
            kwargs = self._net_kwargs(valid, seed)
            kwargs.update(criterion=WriterClassLoss, criterion__embedding_dim=self.embedding_dim,
                          criterion__weight=weight, criterion__scale=scale,
                          criterion__class_margin=class_margin)
            return WriterClassNet(**kwargs)

    return WriterClassVerifier


def mirrored_training_writers(data, fold, n_splits):
    """The fold's training writers, every image mirrored left to right, as new writers."""
    items, writer, genuine = _items_of(data)
    train, _ = list(GroupKFold(n_splits=n_splits).split(items, groups=writer))[fold]

    # Loaded as the preprocessor loads them (colour, alpha, EXIF handled), then mirrored.
    images = [np.ascontiguousarray(load_grayscale(items[i])[:, ::-1]) for i in train]
    return Bunch(images=images, writer=[f"mirrored {w}" for w in writer[train]],
                 genuine=genuine[train], paths=None)


#: The single-threshold EERs, and the means of the test writers' own EERs.
EERS = ("eer_skilled", "eer_random", "eer_skilled_writer", "eer_random_writer")


def fold_eers(result):
    """The figures of :data:`EERS` of the one fold in ``result``."""
    return {name: result["folds"][0][name] for name in EERS}


def mean_decision(decisions, standardise=True):
    """The ensemble's decision value per pair: the mean of the models' values, each
    divided first by its standard deviation over these pairs (no labels used) unless
    ``standardise`` is False, so that no model's distance scale outweighs the others'."""
    decisions = np.asarray(decisions, dtype=np.float64)
    if standardise:
        decisions = decisions / decisions.std(axis=1, keepdims=True)
    return decisions.mean(axis=0)


def ensemble_eers(scores, standardise=True):
    """EERs of the :func:`mean_decision` of several models on the same test pairs."""
    y, kind = scores[0]["y"], scores[0]["kind"]
    if any(not np.array_equal(s["y"], y) for s in scores):
        raise RuntimeError("the seeds' runs scored different test pairs; they cannot be averaged.")
    decision = mean_decision([s["decision"] for s in scores], standardise)
    # The benchmark's own figures, on the averaged decision values.
    metrics = _fold_metrics(y, kind, decision, scores[0].get("writer"))
    return {name: metrics[name] for name in EERS if name in metrics}


def run(data, setting, fold=0, seeds=(0,), n_splits=5, swa_start=10, synthetic_writers=60,
        piece_size=16, elastic_amplitude=2.0, elastic_spacing=24.0, tta_views=8,
        class_weight=0.1, class_scale=16.0, class_margin=0.2, verifier_params=None,
        preprocessor=None, pretrain_data=None, pretrain_params=None, pretrained_cache=None,
        freeze=()):
    """One setting on one fold, per seed (and their ensemble for several seeds)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting={setting!r}: choose one of {SETTINGS}.")
    if freeze and setting != "pretrained":
        raise ValueError(f"freeze={list(freeze)} keeps pretrained weights: it needs the "
                         f"pretrained setting, not {setting!r}.")
    params = dict(verifier_params or {})
    if setting in MODULE_SETTINGS:
        # Measured before local matching; their modules replace the global embedding.
        params.setdefault("local_weight", 0)
    extra = None
    verifier = SiameseVerifier
    if setting == "swa":
        if swa_start < 1:
            raise ValueError(f"swa_start={swa_start}: epochs are numbered from 1.")
        params["callbacks"] = [WeightAveraging(swa_start)]
    elif setting == "synthetic-writers":
        extra = make_synthetic_signatures(n_writers=synthetic_writers, n_genuine=24, n_forgeries=24,
                                          random_state=1)
    elif setting == "mirrored-writers":
        extra = mirrored_training_writers(data, fold, n_splits)
    elif setting == "writer-pieces":
        if piece_size < 2:
            raise ValueError(f"piece_size={piece_size}: a piece needs 2 images to hold a pair.")
        verifier = writer_pieces_verifier(piece_size)
    elif setting == "elastic":
        if elastic_amplitude < 0 or elastic_spacing <= 0:
            raise ValueError(f"elastic_amplitude={elastic_amplitude}, elastic_spacing="
                             f"{elastic_spacing}: need an amplitude >= 0 and a spacing > 0.")
        verifier = elastic_verifier(elastic_amplitude, elastic_spacing)
    elif setting == "tta":
        if tta_views < 1:
            raise ValueError(f"tta_views={tta_views}: need at least the canvas itself.")
        plain = []
        verifier = tta_verifier(tta_views, plain)
    elif setting == "writer-classes":
        if class_weight < 0 or class_scale <= 0 or class_margin < 0:
            raise ValueError(f"class_weight={class_weight}, class_scale={class_scale}, "
                             f"class_margin={class_margin}: need a weight >= 0, a scale > 0 "
                             "and a margin >= 0.")
        verifier = writer_classes_verifier(class_weight, class_scale, class_margin)
    elif setting == "image-scale":
        verifier = image_scale_verifier()
    elif setting == "fine-local":
        params.setdefault("backbone", FineCompactNet)
    elif setting == "cosine-lr":
        epochs = params.get("max_epochs", SiameseVerifier().max_epochs)
        params["callbacks"] = [("lr_schedule", LRScheduler(CosineAnnealingLR, T_max=epochs))]
    elif setting == "cohort-norm":
        norm_records = {}
        verifier = cohort_norm_verifier(norm_records)
    elif setting == "shared-split":
        validation_scores = []
        verifier = shared_split_verifier(validation_scores)
    elif setting == "pretrained":
        if pretrain_data is None:
            raise ValueError("the pretrained setting needs the other corpus (pretrain_data, "
                             "--pretrain-data).")
        params["warm_start"] = True
    runs, scores = [], []
    for seed in seeds:
        start = time.perf_counter()
        if setting == "pretrained":  # the fold's clone gets these weights
            pretrained = pretrain(data, pretrain_data, seed, pretrain_params, preprocessor,
                                  pretrained_cache)
            verifier = pretrained_verifier(pretrained)
            if freeze:
                params["callbacks"] = [freezer(pretrained.net_, freeze)]
        result = cross_validate_writers(
            data, verifier(random_state=seed, **params), preprocessor=preprocessor,
            n_splits=n_splits, folds=[fold], progress=False, extra_training=extra,
        )
        runs.append({"seed": seed, **fold_eers(result), "seconds": time.perf_counter() - start,
                     **{key: result["folds"][0][key] for key in ("validation_eer", "size_weight")}})
        if setting == "tta":  # the same model's test pairs, one view per canvas
            test = result["scores"][0]
            runs[-1]["one_view"] = ensemble_eers([dict(test, decision=plain.pop())])
        if setting == "cohort-norm":  # the same model's test pairs, each normalisation
            test = result["scores"][0]
            runs[-1]["norms"] = {
                name: {"validation_eer": norm_records["validation"][name],
                       **ensemble_eers([dict(test, decision=decision)])}
                for name, decision in norm_records["test"].items()}
        scores.append(result["scores"][0])
    out = {"setting": setting, "fold": fold, "runs": runs}
    if len(seeds) > 1:
        # Both forms: figures measured before 2026-11-23 averaged unscaled values.
        for key, standardise in (("ensemble", True), ("ensemble_unscaled", False)):
            out[key] = ensemble_eers(scores, standardise)
            if setting == "shared-split":  # the seeds' validation writers are one set
                decision = mean_decision([v["decision"] for v in validation_scores], standardise)
                out[key]["validation_eer"], _ = equal_error_rate(validation_scores[0]["y"],
                                                                 decision)
    return out


def json_params(parser, option, text, what="verifier parameters"):
    """``option``'s parameters (a JSON object of ``what``), or the parser's error
    naming it (bench/stroke_cues.py's ``--tree-params`` too)."""
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        parser.error(f"{option} is not JSON ({error}): {text!r}")
    if not isinstance(params, dict):
        parser.error(f"{option} must be a JSON object of {what}; got {text!r}")
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="signature folder (any load_signatures layout)")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--setting", choices=SETTINGS, default="defaults")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--swa-start", type=int, default=10,
                        help="first averaged epoch (default 10 of 20)")
    parser.add_argument("--synthetic-writers", type=int, default=60)
    parser.add_argument("--piece-size", type=int, default=16,
                        help="most images of one writer per batch (writer-pieces; default 16)")
    parser.add_argument("--elastic-amplitude", type=float, default=2.0,
                        help="offset SD in pixels at the control points (elastic; default 2)")
    parser.add_argument("--elastic-spacing", type=float, default=24.0,
                        help="pixels between control points (elastic; default 24)")
    parser.add_argument("--tta-views", type=int, default=8,
                        help="views averaged per embedding, the canvas included (tta; default 8)")
    parser.add_argument("--class-weight", type=float, default=0.1,
                        help="weight of the writer-class term (writer-classes; default 0.1)")
    parser.add_argument("--class-scale", type=float, default=16.0,
                        help="cosine-softmax scale (writer-classes; default 16)")
    parser.add_argument("--class-margin", type=float, default=0.2,
                        help="cosine margin of the true class (writer-classes; default 0.2)")
    parser.add_argument("--pretrain-data", default=None,
                        help="the other corpus to pretrain on (pretrained)")
    parser.add_argument("--pretrain-params", default="{}",
                        help="verifier parameters of the pretraining, as JSON (pretrained)")
    parser.add_argument("--pretrained-cache", default=None,
                        help="folder to keep each seed's pretrained model in, one folder "
                        "per other corpus and --pretrain-params (pretrained)")
    parser.add_argument("--freeze", nargs="+", default=[], metavar="PATTERN",
                        help="parameter names (fnmatch) kept at their pretrained values in "
                        "fine-tuning (pretrained)")
    parser.add_argument("--params", default="{}", help="verifier parameters as JSON")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    params = json_params(parser, "--params", args.params)
    pretrain_params = json_params(parser, "--pretrain-params", args.pretrain_params)
    data = load_signatures(args.data, layout=args.layout)
    pretrain_data = None
    if args.pretrain_data is not None:  # the other corpus may be laid out otherwise
        pretrain_data = load_signatures(args.pretrain_data)
    out = run(data, args.setting, fold=args.fold, seeds=args.seeds, swa_start=args.swa_start,
              synthetic_writers=args.synthetic_writers, piece_size=args.piece_size,
              elastic_amplitude=args.elastic_amplitude, elastic_spacing=args.elastic_spacing,
              tta_views=args.tta_views, class_weight=args.class_weight,
              class_scale=args.class_scale, class_margin=args.class_margin,
              verifier_params=params, pretrain_data=pretrain_data,
              pretrain_params=pretrain_params, pretrained_cache=args.pretrained_cache,
              freeze=args.freeze)
    for r in out["runs"]:
        print(f"{args.setting}  fold {args.fold}  seed {r['seed']}: "
              f"skilled EER {100 * r['eer_skilled']:.1f} %, "
              f"random EER {100 * r['eer_random']:.1f} % (per-writer thresholds: "
              f"{100 * r['eer_skilled_writer']:.1f} %, {100 * r['eer_random_writer']:.1f} %), "
              f"validation-writer EER "
              f"{100 * r['validation_eer']:.1f} %, size weight {r['size_weight']:g}  "
              f"({r['seconds']:.0f} s)")
        if "one_view" in r:
            print(f"    the same model, one view: skilled EER "
                  f"{100 * r['one_view']['eer_skilled']:.1f} %, random EER "
                  f"{100 * r['one_view']['eer_random']:.1f} %")
        for name, e in r.get("norms", {}).items():
            print(f"    {name}: skilled EER {100 * e['eer_skilled']:.1f} %, random EER "
                  f"{100 * e['eer_random']:.1f} % (per-writer thresholds: "
                  f"{100 * e['eer_skilled_writer']:.1f} %, {100 * e['eer_random_writer']:.1f} %), "
                  f"validation-writer EER {100 * e['validation_eer']:.1f} %")
    for key, form in (("ensemble", "standardised"), ("ensemble_unscaled", "unscaled")):
        if key not in out:
            continue
        e = out[key]
        validation = (f", validation-writer EER {100 * e['validation_eer']:.1f} %"
                      if "validation_eer" in e else "")
        print(f"ensemble of {len(args.seeds)} ({form} mean decision): skilled EER "
              f"{100 * e['eer_skilled']:.1f} %, random EER {100 * e['eer_random']:.1f} %"
              f"{validation}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
