"""SiameseVerifier: a Siamese network as a scikit-learn binary classifier."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from skorch.callbacks import ProgressBar
from skorch.helper import predefined_split

from ._boosting import fit_boosted_trees
from ._pairs import PairedCanvases, as_bank, size_distances, stroke_differences, to_canvases
from .nn import BACKBONES, DISTANCES, LOSSES, PairDataset, SiameseModule, SiameseNet
from .nn.batching import image_clusters
from .patches import embed_masks, pair_classes, pair_distances, train_patch_net
from .strokes import N_STROKE_FEATURES
from .threshold import STRATEGIES, choose_threshold, equal_error_rate_from_roc, roc_curve

#: Weights of the size term that ``size_weight="auto"`` tries (0: the network alone).
#: The contrastive loss's distances (at most 2) chose 0.25 or 0.5 on real scans;
#: the ``"bce"`` head's distance is a logit, on a wider scale, and chose up to 4,
#: so the grid goes on doubling to 64.
SIZE_WEIGHTS = (0.0, 0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)

#: Weights of the stroke term that ``stroke_weight="auto"`` tries (0: without it).
#: The stroke classifier's log-odds span about +-10 and the contrastive loss's
#: distances 0 to 2: real scans chose 1/32 to 1/4; the grid reaches 8 for the
#: wider logits of the ``"bce"`` head.
STROKE_WEIGHTS = (0.0,) + tuple(2.0 ** k for k in range(-8, 4))

#: Weights of the patch term that ``patch_weight="auto"`` tries (0: without it).
#: The patch distance lies in [0, 2] like the contrastive loss's, about 0.1 to
#: 0.6 on real scans; CEDAR's held-out writers chose about 0.3 to 3.
PATCH_WEIGHTS = (0.0,) + tuple(2.0 ** k for k in range(-5, 4))

#: How the patch network trains (:func:`skseg.patches.train_patch_net`'s settings),
#: as ``bench/patch_net.py`` measured it: 6 passes over 32 windows drawn per image.
PATCH_TRAINING = {"epochs": 6, "windows_per_image": 32}

#: The weight of the local match that ``local_weight="auto"`` uses where it applies.
AUTO_LOCAL_WEIGHT = 0.5

#: Prefixes of nested skorch settings that SiameseVerifier passes through.
SKORCH_PREFIXES = ("module__", "optimizer__", "criterion__", "callbacks__")


class SiameseVerifier(ClassifierMixin, BaseEstimator):
    """Verify signature pairs with a Siamese network, trained through skorch.

    Input is pairs of canvases, ``(n_pairs, 2, H, W)``: the first image of a
    pair is the reference (a genuine signature of the claimed writer), the
    second the questioned signature. uint8 with ink high and background 0, as
    :class:`~skseg.SignaturePreprocessor` makes them; floats in [0, 1] are
    quantised to 8 bits.

    Both images go through one shared network (the *backbone*) to embeddings;
    a pair's distance is compared to a threshold chosen on held-out pairs.
    Training and prediction work on the *unique* images of all pairs: each is
    embedded once per epoch (or once per prediction), and batches of images are
    trained with every labelled pair among them.

    Labels: exactly two classes; ``classes_[1]`` (the larger label: 1 in
    {0, 1}, ``"genuine"`` in {"forged", "genuine"}) means "same writer,
    genuine"; :meth:`decision_function`, ``predict_proba[:, 1]`` and ROC
    scorers treat it as the positive class.

    Parameters
    ----------
    backbone : {"compact", "signet"} or torch.nn.Module class, default="compact"
        The embedding network. ``"compact"``: :class:`~skseg.nn.CompactNet`, a
        small network that trains in minutes on a 2-core CPU. ``"signet"``:
        :class:`~skseg.nn.SigNet` as its authors released it. A class is called
        as ``backbone(embedding_dim=embedding_dim)`` and must map
        ``(batch, 1, H, W)`` floats to ``(batch, embedding_dim)``; its other
        arguments are reachable as ``module__backbone_kwargs``.
    embedding_dim : int, default=128
        Size of the embedding.
    loss : {"contrastive", "triplet", "bce"}, default="contrastive"
        ``"contrastive"``: SigNet's contrastive loss. ``"triplet"``: triplets
        (anchor, genuine partner, forged partner) mined from the labelled pairs
        of each batch. ``"bce"``: a linear head on ``|e1 - e2|`` trained with
        binary cross-entropy (``distance`` is then not used).
    margin : float, default=0.5
        Margin of the contrastive and triplet losses, in units of
        ``distance``; must be > 0. 0.5 had the lower equal error rate on
        the validation writers of 8 of 10 writer folds of CEDAR and Dutch
        SigComp 2011 against 1.0 (see the performance page of the docs).
    pos_weight, neg_weight : float, default=1.0
        Weights of genuine and forged pairs in the contrastive loss.
    distance : {"euclidean", "cosine", "l1"}, default="euclidean"
        How two embeddings are compared.
    normalize : bool, default=True
        L2-normalise embeddings (so euclidean distances lie in [0, 2] and a
        margin means the same for any backbone). The triplet loss always
        normalises.
    local_weight : "auto" or float in [0, 1], default="auto"
        Also compare the two signatures stroke by stroke: a pair's distance
        becomes ``(1 - local_weight) * distance + local_weight * local``, where
        ``local`` matches the backbone's last feature map (a grid of 9 x 13
        positions for ``"compact"`` at 155 x 220) of one image to the
        other's, each position to its best match within one position, with
        32 unit-length features per position (``module__local_channels``,
        ``module__local_reach``; see :class:`~skseg.nn.SiameseModule`). Skilled
        forgers copy the overall shape more faithfully than each stroke.
        Embeddings (:meth:`embed`) then also hold the local map. ``"auto"``:
        :data:`AUTO_LOCAL_WEIGHT` (0.5) where local matching applies, i.e. with
        the contrastive or triplet loss and a backbone that gives its feature
        map (``forward_features``, as the built-in ones do), else 0 (the binary
        head of ``loss="bce"`` has no distance to mix into). 0: the global
        embedding alone. Over 5 writer folds of Dutch SigComp 2011 and of
        CEDAR each, 0.5 had the lower EER on the validation writers in 4 folds
        of 5, and lowered the mean skilled-forgery EER from 14.8 to 13.0 %
        (Dutch) and from 18.4 to 17.1 % (CEDAR) (see the performance page of
        the docs), for 15 to 18 % more training time on a CPU.
    optimizer : torch.optim.Optimizer class, default=torch.optim.AdamW
        Its other settings are reachable as ``optimizer__<name>``, e.g.
        ``optimizer__weight_decay``.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=128
        Unique images per training batch (each batch is trained with every
        labelled pair among its images). Whole writers are kept together, so
        a batch should hold several writers' images: CEDAR has 48 per writer.
    micro_batch_size : int or None, default=None
        Save memory: embed each training batch in chunks of this many images
        and recompute a chunk's activations during the backward pass
        (activation checkpointing). The loss still covers every pair of the
        batch; activation memory becomes one chunk's instead of the batch's
        (on CEDAR, with 16, the memory fit adds fell from about 6x to 2.1x
        the size of the bank and model), for one extra forward pass (2 % to
        40 % more training time, measured on a 2-core CPU). BatchNorm then
        normalises over each chunk of near-equal size. None: the whole batch
        at once. Not combined with ``accelerate``.
    mixed_precision : {"no", "bf16"}, default="no"
        Precision of the network's forward passes. ``"bf16"``: under
        ``torch.autocast`` with bfloat16 (weights, embeddings, distances and
        the loss stay float32), on any device. Measured on an H100 with SigNet
        in batches of 128: the backbone alone trains 1.16x and embeds 1.31x
        faster, but a CEDAR fit, bound by kernel launches at that size, took
        5.1 s per fold against 4.2 s in float32 (see the performance page of
        the docs); it pays with larger batches or backbones. A CPU without
        bfloat16 units gains nothing. With ``accelerate``, set Accelerate's own
        ``mixed_precision`` instead.
    max_epochs : int, default=20
        Passes over the training pairs.
    augment : bool, default=True
        Small random affine jitter of the training canvases (rotation, scale,
        shift), drawn per image on the training device.
    implied_pairs : bool, default=True
        Also train on the pairs the labels imply within each writer, at no
        extra image forward: images linked by genuine pairs (one writer) are
        all genuine pairs of each other, and a forgery paired with one of a
        writer's genuine images is a forgery against all of them. Labels
        never contradict this, so it is on by default.
    random_negatives : float >= 0, default=1.0
        Random forgeries added to each training batch, per genuine pair in
        it: two genuine images of *different* writers (different clusters of
        the genuine-pair graph) form a forged pair, again at no extra image
        forward. This assumes different clusters are different writers, which
        holds when each writer's genuine pairs link all of its images (as
        :func:`~skseg.datasets.make_pairs` makes them); set 0 when a writer's
        images may form several unlinked groups.
    size_weight : "auto" or float >= 0, default="auto"
        Weight of how differently large the two signatures were written, added
        to the network's distance: ``distance + size_weight * (|log(h1 / h2)|
        + |log(w1 / w2)|)``, from the heights and widths of the two ink boxes
        (the canvas no longer shows them: the preprocessor fits every
        signature to it). Forgers copy a signature's shape more faithfully
        than its size. ``"auto"``: the weight of :data:`SIZE_WEIGHTS` with the
        lowest equal error rate on the held-out pairs where the threshold is
        chosen (0 if none helps). The sizes come with the pairs from
        :class:`~skseg.SignaturePreprocessor` (a :class:`~skseg.PairedCanvases`);
        pairs without them (a plain array) get no size term with ``"auto"``.
        Both images of a pair must be scanned at the same resolution, or the
        preprocessor must measure sizes in inches from the resolution each file
        records (``SignaturePreprocessor(ink_size_unit="inches")``); otherwise
        set 0 where references and questioned signatures come from different
        scanners or resolutions. Over 5 writer folds it lowered the mean skilled-forgery
        EER from 20.0 to 18.3 % on CEDAR and from 16.2 to 14.3 % on Dutch
        SigComp 2011 (see the performance page of the docs).
    stroke_weight : "auto" or float >= 0, default="auto"
        Weight of what the two signatures' stroke descriptors tell, subtracted
        from the distance: ``distance - stroke_weight * log_odds``. Each image's
        descriptor (stroke widths, gradient directions and 3 x 3 ink patterns
        of its ink at the scan's own resolution, which the canvas no longer
        shows: :mod:`skseg.strokes`) comes with the pairs from
        :class:`~skseg.SignaturePreprocessor` (a :class:`~skseg.PairedCanvases`
        with ``strokes``). After the network is trained, scikit-learn's
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier` learns from
        the training pairs which differences ``|d1 - d2|`` mark a forgery, for
        every writer at once; ``log_odds`` is its log-odds of a genuine pair.
        ``"auto"``: the weight of :data:`STROKE_WEIGHTS` with the lowest equal
        error rate on the held-out pairs where the threshold is chosen (0 if
        none helps, and 0 without held-out pairs, since the classifier has
        seen the training pairs); pairs without descriptors (a plain array)
        get no stroke term. Over 5 writer folds it lowered the mean
        skilled-forgery EER from 17.1 to 12.2 % on CEDAR and from 12.9 to
        10.5 % on Dutch SigComp 2011, in every fold, and the random-forgery
        EER by about half (see the performance page of the docs); the
        classifier fits in well under a minute on CEDAR on a 2-core CPU.
    patch_weight : "auto" or float >= 0, default=0.0
        Weight of the patch term, added to the distance: ``distance +
        patch_weight * patch_distance``. A second, small network
        (:class:`skseg.patches.PatchNet`) sees 32 x 32 windows of each image's
        ink mask at the scale of the stroke, which neither the canvas nor the
        descriptors show; it learns to tell the training writers' genuine
        windows from their forgers' (classes read off the labelled pairs:
        :func:`skseg.patches.pair_classes`), and ``patch_distance`` is the
        Euclidean distance between the mean window embeddings of a pair's two
        images. The masks come with the pairs from
        ``SignaturePreprocessor(stroke_masks=True)``; any weight but 0 refuses
        pairs without them. ``"auto"``: the weight of :data:`PATCH_WEIGHTS` with
        the lowest equal error rate on the held-out pairs (size and stroke terms
        included; 0 if none helps, and 0 without held-out pairs). 0 by default:
        with ``"auto"``, over 5 writer folds, the mean skilled-forgery EER fell
        from 12.2 to 11.5 % on CEDAR (lower in every fold) but only from 10.5
        to 10.4 % on Dutch SigComp 2011, and a fit took twice as long on a
        2-core CPU (see the performance page of the docs).
    threshold : "auto" or float, default="auto"
        ``"auto"``: chosen after training on held-out pairs with
        ``threshold_strategy``. A number: a fixed distance threshold (pairs
        closer than it are genuine).
    threshold_strategy : {"eer", "accuracy", "youden", "far", "frr"}, default="eer"
        How the threshold is chosen; see :func:`skseg.threshold.choose_threshold`.
    threshold_target : float in [0, 1], default=0.01
        The FAR (or FRR) cap for ``threshold_strategy="far"`` (or ``"frr"``).
    validation_fraction : float in [0, 1), default=0.2
        Fraction of the training pairs held out to choose the threshold and to
        calibrate probabilities (and to report ``valid_loss``). The split keeps
        writers apart: pairs are grouped by the clusters of images that genuine
        pairs link. 0 uses the training pairs themselves, which is optimistic.
    warm_start : bool, default=False
        When fitted already, start :meth:`fit` from the network weights of the
        last fit (BatchNorm statistics included) instead of new random ones:
        fine-tune a model trained on a large corpus (or loaded with
        :func:`skseg.load`) on the writers it will serve. The optimizer starts
        afresh with this fit's ``lr`` (a lower one often suits fine-tuning),
        and the threshold, the size, stroke and patch weights, the stroke
        classifier, the patch network and the probability calibration are
        chosen anew. The network these
        parameters build must take the same weights (same backbone,
        ``embedding_dim``, loss and local matching); otherwise :meth:`fit`
        raises a ``ValueError`` and the fitted model is kept. No
        effect on an unfitted verifier, nor on the clones that
        :class:`~sklearn.model_selection.GridSearchCV` fits.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU.
    accelerate : bool or dict, default=False
        Train through Hugging Face Accelerate (skorch's ``AccelerateMixin``):
        ``True``, or the keyword arguments of ``accelerate.Accelerator`` (e.g.
        ``{"mixed_precision": "bf16"}``). Launched with ``accelerate launch``
        on several GPUs, each process trains on its share of every epoch's
        batches (data parallel); ``device`` is then Accelerate's. Needs
        ``pip install "skseg[accelerate]"``. Not stored by :meth:`save`.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batching, augmentation and the
        validation split; the same seed on the same machine gives the same
        model.
    verbose : int, default=0
        1 prints skorch's epoch table (with ``pairs/img``, labelled pairs
        trained per image forward); 2 adds a progress bar.
    callbacks : list of skorch callbacks, default=None
        Added to skorch's defaults, e.g. ``[EarlyStopping(patience=3)]``;
        their settings are reachable as ``callbacks__<name>__<param>``.
    **kwargs
        Nested skorch settings with the prefixes ``module__``,
        ``optimizer__``, ``criterion__`` and ``callbacks__``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is "genuine pair".
    threshold_ : float
        Distance threshold: pairs with a smaller distance (with the size and
        stroke terms) are genuine.
    local_weight_ : float
        The weight of the local match in use (0: none).
    size_weight_ : float
        The weight of the size term in use (0: none).
    size_weight_eers_ : dict of float to float
        With ``size_weight="auto"``: the EER for each weight of
        :data:`SIZE_WEIGHTS` on the pairs ``size_weight_`` was chosen on (the
        held-out pairs; the training pairs with ``validation_fraction=0``);
        empty otherwise.
    stroke_weight_ : float
        The weight of the stroke term in use (0: none).
    stroke_weight_eers_ : dict of float to float
        With ``stroke_weight="auto"``: the held-out pairs' EER (size term
        included) for each weight of :data:`STROKE_WEIGHTS`; empty when the
        weight was not chosen there. A curve that falls steeply on few held-out
        writers deserves less trust than its minimum suggests.
    patch_weight_ : float
        The weight of the patch term in use (0: none).
    patch_weight_eers_ : dict of float to float
        With ``patch_weight="auto"``: the held-out pairs' EER (size and stroke
        terms included) for each weight of :data:`PATCH_WEIGHTS`; empty when
        the weight was not chosen there.
    patch_net_ : skseg.patches.PatchNet or None
        The network of the patch term, in eval mode on ``device_`` (None when
        ``patch_weight_`` is 0).
    patch_median_ : float
        The held-out pairs' median patch distance, which a pair with an image
        without ink gets (no evidence either way); NaN without a patch term.
    stroke_model_ : skseg._boosting.BoostedTrees or None
        The trees of the stroke classifier (None when ``stroke_weight_`` is 0);
        its ``decision_function`` of ``|d1 - d2|`` is the log-odds of a
        genuine pair.
    proba_scale_ : float
        Slope of the logistic map from ``decision_function`` to ``P(genuine)``,
        fitted on held-out pairs.
    validation_eer_ : float
        Equal error rate on the held-out pairs, size, stroke and patch terms
        included (NaN with ``validation_fraction=0``).
    canvas_shape_ : tuple of int
        ``(H, W)`` of the training canvases; prediction needs the same.
    net_ : skseg.nn.SiameseNet
        The trained skorch net; ``net_.history`` holds the training history.
    device_ : str
        The device the model was trained on.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skseg import SiameseVerifier, SignaturePreprocessor
    >>> from skseg.datasets import make_pairs, make_synthetic_signatures
    >>> data = make_synthetic_signatures(n_writers=4, n_genuine=4, n_forgeries=4,
    ...                                  random_state=0)
    >>> pairs, y, groups = make_pairs(data, random_state=0)
    >>> model = make_pipeline(SignaturePreprocessor(canvas_size=(40, 60)),
    ...                       SiameseVerifier(max_epochs=1, random_state=0))
    >>> model.fit(pairs, y).predict_proba(pairs[:3]).shape
    (3, 2)
    """

    _parameter_constraints = {
        "backbone": [StrOptions(set(BACKBONES)), type],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions(set(LOSSES))],
        "margin": [Interval(Real, 0, None, closed="neither")],
        "pos_weight": [Interval(Real, 0, None, closed="left")],
        "neg_weight": [Interval(Real, 0, None, closed="left")],
        "distance": [StrOptions(set(DISTANCES))],
        "normalize": ["boolean"],
        "local_weight": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
        "optimizer": [type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "micro_batch_size": [Interval(Integral, 2, None, closed="left"), None],
        "mixed_precision": [StrOptions({"no", "bf16"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "augment": ["boolean"],
        "implied_pairs": ["boolean"],
        "random_negatives": [Interval(Real, 0, None, closed="left")],
        "size_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "stroke_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "patch_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "threshold": [StrOptions({"auto"}), Interval(Real, None, None, closed="neither")],
        "threshold_strategy": [StrOptions(set(STRATEGIES))],
        "threshold_target": [Interval(Real, 0, 1, closed="both")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "accelerate": ["boolean", dict],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        backbone="compact",
        embedding_dim=128,
        loss="contrastive",
        margin=0.5,
        pos_weight=1.0,
        neg_weight=1.0,
        distance="euclidean",
        normalize=True,
        local_weight="auto",
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        batch_size=128,
        micro_batch_size=None,
        mixed_precision="no",
        max_epochs=20,
        augment=True,
        implied_pairs=True,
        random_negatives=1.0,
        size_weight="auto",
        stroke_weight="auto",
        patch_weight=0.0,
        threshold="auto",
        threshold_strategy="eer",
        threshold_target=0.01,
        validation_fraction=0.2,
        warm_start=False,
        device="auto",
        accelerate=False,
        random_state=None,
        verbose=0,
        callbacks=None,
        **kwargs,
    ):
        self.backbone = backbone
        self.embedding_dim = embedding_dim
        self.loss = loss
        self.margin = margin
        self.pos_weight = pos_weight
        self.neg_weight = neg_weight
        self.distance = distance
        self.normalize = normalize
        self.local_weight = local_weight
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.micro_batch_size = micro_batch_size
        self.mixed_precision = mixed_precision
        self.max_epochs = max_epochs
        self.augment = augment
        self.implied_pairs = implied_pairs
        self.random_negatives = random_negatives
        self.size_weight = size_weight
        self.stroke_weight = stroke_weight
        self.patch_weight = patch_weight
        self.threshold = threshold
        self.threshold_strategy = threshold_strategy
        self.threshold_target = threshold_target
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.device = device
        self.accelerate = accelerate
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        for key, value in kwargs.items():
            setattr(self, key, value)
        self._skorch_params = sorted(kwargs)

    # -- scikit-learn plumbing ------------------------------------------------

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update({key: getattr(self, key) for key in getattr(self, "_skorch_params", [])})
        return params

    def set_params(self, **params):
        nested = {k: v for k, v in params.items() if k.startswith(SKORCH_PREFIXES)}
        for key, value in nested.items():
            setattr(self, key, value)
            if key not in self._skorch_params:
                self._skorch_params = sorted([*self._skorch_params, key])
        rest = {k: v for k, v in params.items() if k not in nested}
        return super().set_params(**rest) if rest else self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Input is image pairs (n_pairs, 2, H, W), not a feature table.
        tags.input_tags.two_d_array = False
        tags.classifier_tags.multi_class = False
        return tags

    # -- fitting ---------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on labelled pairs, then the stroke classifier (and the
        patch network); choose the size, stroke (and patch) weights and the threshold
        on the held-out pairs.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, H, W) or PairedCanvases
            Pairs of canvases (reference, questioned).
        y : array-like of shape (n_pairs,)
            Two labels; ``classes_[1]`` (the larger) means "genuine pair".

        Returns
        -------
        self : SiameseVerifier
        """
        unknown = [k for k in self._skorch_params if not k.startswith(SKORCH_PREFIXES)]
        if unknown:
            raise TypeError(
                f"SiameseVerifier got unexpected parameter(s) {unknown}; nested skorch "
                f"settings must start with one of {SKORCH_PREFIXES}."
            )
        # Taken before anything changes, so that a warm start that fails can put it back.
        last_fit = dict(vars(self)) if self.warm_start and hasattr(self, "net_") else None
        size_distance = _needed_cue(size_distances(X), "size_weight", self.size_weight,
                                    "the ink size of each image", "a plain array", "sizes")
        stroke_difference = _needed_cue(
            stroke_differences(X), "stroke_weight", self.stroke_weight,
            "the stroke descriptor of each image", "a plain array, or stroke_descriptors=False",
            "strokes")
        masks = self._patch_masks(X)
        bank, index = as_bank(X)
        y = column_or_1d(y, warn=True)
        check_consistent_length(index, y)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(
                "SiameseVerifier needs exactly two classes in y (forged and genuine pairs); "
                f"got {len(classes)}: {classes.tolist()[:10]}."
            )
        self.classes_ = classes
        target = (y == self.classes_[1]).astype(np.float32)
        self.canvas_shape_ = tuple(int(s) for s in bank.shape[1:])
        accelerator = self._make_accelerator()
        self.device_ = str(accelerator.device) if accelerator else self._resolve_device()

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        train_idx, valid_idx = self._validation_split(index, target, len(bank), rng)
        stroke_seed = int(rng.randint(np.iinfo(np.int32).max))
        patch_seed = int(rng.randint(np.iinfo(np.int32).max))

        images = torch.from_numpy(bank).to(self.device_)  # resident on the device
        train = PairDataset(images, index[train_idx], target[train_idx])
        valid = PairDataset(images, index[valid_idx], target[valid_idx]) if len(valid_idx) else None

        cuda = [torch.device(self.device_)] if self.device_.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            self.local_weight_ = self._local_weight()
            self.net_ = self._build_net(valid, seed, accelerator)
            self.net_.initialize()
            if last_fit is not None:
                self._start_from(last_fit)
            self._check_backbone_accepts(images[:1])
            if self.verbose >= 2:
                self._size_progress_bar(train, valid)
            self.net_.partial_fit(train, y=None)  # initialised above: no re-initialisation
            if accelerator is not None:
                self.net_ = self.net_.to_plain_net(**self._net_kwargs(None, seed))
        # The validation split holds the image bank: drop it so that a saved
        # model carries no training signatures (privacy, and size).
        self.net_.train_split = None

        # Size weight, threshold and probabilities on the held-out pairs, on the device.
        calibration_rows = valid_idx if valid is not None else train_idx
        # as_bank drops the images no calibration pair uses: only these are embedded.
        calibration_bank, calibration_index = as_bank(PairedCanvases(bank, index[calibration_rows]))
        embeddings = self.net_.embed(calibration_bank)
        distances = self.net_.pair_distances(embeddings, calibration_index, numpy=False)
        pair_target = target
        target = torch.as_tensor(target[calibration_rows], device=distances.device)
        if size_distance is not None:
            size_distance = torch.as_tensor(size_distance[calibration_rows],
                                            device=distances.device)
        self.size_weight_ = self._choose_size_weight(distances, size_distance, target)
        distances = self._add_size_term(distances, size_distance)
        distances = self._fit_stroke_term(stroke_difference, pair_target, train_idx,
                                          calibration_rows, distances, target,
                                          has_validation=valid is not None, seed=stroke_seed)
        distances = self._fit_patch_term(masks, X, pair_target, train_idx, calibration_rows,
                                         distances, target, has_validation=valid is not None,
                                         seed=patch_seed)
        self.validation_eer_ = float("nan")
        if valid is not None:
            self.validation_eer_ = _equal_error_rate(target, distances)
        self._calibrate(distances, target, self.threshold_strategy, self.threshold_target,
                        choose=self.threshold == "auto")
        return self

    def _start_from(self, last_fit):
        """Load the weights of the last fit (``warm_start``); if this network cannot
        take them, put the last fit back and say why."""
        try:
            self.net_._siamese_module().load_state_dict(last_fit["net_"].module_.state_dict())
        except RuntimeError as err:
            vars(self).clear()
            vars(self).update(last_fit)
            raise ValueError(
                "warm_start=True, but the network these parameters build cannot take the "
                f"weights of the last fit (backbone={self.backbone!r}, embedding_dim="
                f"{self.embedding_dim}, loss={self.loss!r}, local_weight={self.local_weight!r}; "
                "were they changed?). The fitted model is kept; set warm_start=False to "
                f"train from new weights. {err}"
            ) from err

    def _choose_size_weight(self, distances, size_distance, target):
        """``size_weight``, or with ``"auto"`` the weight with the lowest EER on these pairs
        (every weight's EER goes to ``size_weight_eers_``)."""
        self.size_weight_eers_ = {}
        if size_distance is None:
            return 0.0
        if self.size_weight != "auto":
            return float(self.size_weight)
        weight, self.size_weight_eers_ = _best_weight(SIZE_WEIGHTS, distances, size_distance,
                                                      target)
        return weight

    def _fit_stroke_term(self, stroke_difference, pair_target, train_idx, calibration_rows,
                         distances, target, has_validation, seed):
        """Set ``stroke_model_``, ``stroke_weight_`` and ``stroke_weight_eers_``: the
        classifier learns from the training pairs (``pair_target``: every pair's,
        numpy); ``"auto"`` weighs it on the calibration pairs (``distances`` and
        ``target``: theirs, tensors). Returns those pairs' distances with the stroke
        term."""
        self.stroke_model_, self.stroke_weight_, self.stroke_weight_eers_ = None, 0.0, {}
        auto = self.stroke_weight == "auto"
        if stroke_difference is None or self.stroke_weight == 0 or (auto and not has_validation):
            return distances
        model = fit_boosted_trees(stroke_difference[train_idx], pair_target[train_idx],
                                  random_state=seed)
        log_odds = torch.as_tensor(model.decision_function(stroke_difference[calibration_rows]),
                                   device=distances.device)
        if auto:
            weight, self.stroke_weight_eers_ = _best_weight(STROKE_WEIGHTS, distances,
                                                            -log_odds, target)
        else:
            weight = float(self.stroke_weight)
        if weight == 0:
            return distances
        self.stroke_model_, self.stroke_weight_ = model, weight
        return distances - weight * log_odds

    def _patch_masks(self, X):
        """The stroke-scale masks X carries (None if none), or a refusal when
        ``patch_weight`` asks for the patch term and X has none."""
        masks = X.masks if isinstance(X, PairedCanvases) else None
        if masks is None and self.patch_weight != 0:
            raise ValueError(
                f"patch_weight={self.patch_weight!r} needs each image's ink mask at the "
                "stroke's scale, but X carries none: preprocess with "
                "skseg.SignaturePreprocessor(stroke_masks=True), or give a PairedCanvases "
                "with masks, or set patch_weight=0."
            )
        return masks

    def _fit_patch_term(self, masks, X, pair_target, train_idx, calibration_rows, distances,
                        target, has_validation, seed):
        """Set ``patch_net_``, ``patch_weight_``, ``patch_weight_eers_`` and
        ``patch_median_``: the patch network learns from the images of the training
        pairs; ``"auto"`` weighs it on the calibration pairs (``distances`` and
        ``target``: theirs, tensors). Returns those pairs' distances with the patch
        term."""
        self.patch_net_, self.patch_weight_, self.patch_weight_eers_ = None, 0.0, {}
        self.patch_median_ = float("nan")
        auto = self.patch_weight == "auto"
        if masks is None or self.patch_weight == 0 or (auto and not has_validation):
            return distances
        classes = pair_classes(X.index[train_idx], pair_target[train_idx], len(masks))
        trained = np.flatnonzero((classes >= 0) & np.array([m is not None for m in masks]))
        if len(np.unique(classes[trained])) < 2:
            warnings.warn(
                "patch_weight: the training pairs give fewer than two classes of images "
                "with ink (writers' genuine signatures and their forgeries) for the patch "
                "network; fitted without the patch term.", UserWarning, stacklevel=3)
            return distances
        cuda = [torch.device(self.device_)] if self.device_.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda):
            self.patch_net_ = train_patch_net(list(masks[trained]), classes[trained],
                                              seed=seed, device=self.device_,
                                              verbose=bool(self.verbose), **PATCH_TRAINING)
        patch = self._patch_distances(masks, X.index[calibration_rows])
        self.patch_median_ = float(np.nanmedian(patch)) if np.isfinite(patch).any() else 0.0
        patch = torch.as_tensor(np.where(np.isnan(patch), self.patch_median_, patch),
                                dtype=distances.dtype, device=distances.device)
        if auto:
            weight, self.patch_weight_eers_ = _best_weight(PATCH_WEIGHTS, distances, patch,
                                                           target)
        else:
            weight = float(self.patch_weight)
        if weight == 0:
            self.patch_net_, self.patch_median_ = None, float("nan")
            return distances
        self.patch_weight_ = weight
        return distances + weight * patch

    def _patch_distances(self, masks, index):
        """The patch network's distance of each ``(n_pairs, 2)`` index row's two masks
        (NaN where one has no ink); each distinct mask is embedded once."""
        used, inverse = np.unique(index, return_inverse=True)
        rows = embed_masks(self.patch_net_, list(masks[used]), device=self.device_)
        return pair_distances(rows, inverse.reshape(index.shape))

    def _add_patch_term(self, distances, X):
        """The distances plus the weighted patch distance of these pairs, numpy or
        torch alike."""
        if self.patch_weight_ == 0:
            return distances
        if not isinstance(X, PairedCanvases) or X.masks is None:
            raise ValueError(
                f"this verifier adds the pairs' patch distance (patch_weight_="
                f"{self.patch_weight_}), but X carries no stroke-scale masks: preprocess "
                "with skseg.SignaturePreprocessor(stroke_masks=True) or give a "
                "PairedCanvases with masks; or refit with patch_weight=0."
            )
        patch = self._patch_distances(X.masks, X.index)
        patch = np.where(np.isnan(patch), self.patch_median_, patch)
        if isinstance(distances, torch.Tensor):
            patch = torch.as_tensor(patch, dtype=distances.dtype, device=distances.device)
        return distances + self.patch_weight_ * patch

    def _add_stroke_term(self, distances, stroke_difference):
        """The distances less the weighted stroke log-odds of these pairs, numpy or
        torch alike."""
        if self.stroke_weight_ == 0:
            return distances
        if stroke_difference is None:
            raise ValueError(
                f"this verifier subtracts what the pairs' stroke descriptors tell from the "
                f"distance (stroke_weight_={self.stroke_weight_}), but X carries none (a plain "
                "array, or stroke_descriptors=False): pass the pairs through "
                "skseg.SignaturePreprocessor() (compact_pairs=True, the default) or give a "
                "PairedCanvases with strokes; or refit with stroke_weight=0."
            )
        if stroke_difference.shape[1] != self.stroke_model_.n_features:
            # A model fitted on another release's descriptor (its parts differ).
            raise ValueError(
                f"this verifier's stroke term was fitted on descriptors of "
                f"{self.stroke_model_.n_features} numbers, but X carries descriptors of "
                f"{stroke_difference.shape[1]} (skseg.strokes.N_STROKE_FEATURES is "
                f"{N_STROKE_FEATURES} in this release): refit the verifier on pairs this "
                "release preprocessed, or refit with stroke_weight=0."
            )
        log_odds = self.stroke_model_.decision_function(stroke_difference)
        if isinstance(distances, torch.Tensor):
            log_odds = torch.as_tensor(log_odds, device=distances.device)
        return distances - self.stroke_weight_ * log_odds

    def _add_size_term(self, distances, size_distance):
        """The network's distances plus the weighted size term (numpy or torch alike)."""
        if self.size_weight_ == 0:
            return distances
        if size_distance is None:
            raise ValueError(
                f"this verifier adds the pairs' size ratio to the distance (size_weight_="
                f"{self.size_weight_}), but X carries no ink sizes (a plain array): pass the "
                "pairs through skseg.SignaturePreprocessor() (compact_pairs=True, the default) "
                "or give a PairedCanvases with sizes; or refit with size_weight=0."
            )
        return distances + self.size_weight_ * size_distance

    def _resolve_device(self):
        if isinstance(self.device, torch.device):
            return str(self.device)
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(self.device)
        except RuntimeError as err:
            raise ValueError(f"device={self.device!r} is not a torch device name.") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available here.")
        return str(device)

    def _validation_split(self, index, target, n_images, rng):
        """Held-out pairs for the threshold: whole writers (image clusters) where possible."""
        n_pairs = len(index)
        everything = np.arange(n_pairs)
        if self.validation_fraction == 0:
            return everything, everything[:0]
        clusters = image_clusters(index, target, n_images)
        pair_cluster = clusters[index[:, 0]]
        if len(np.unique(pair_cluster)) >= 2:
            splitter = GroupShuffleSplit(
                n_splits=1, test_size=self.validation_fraction, random_state=rng
            )
            _, valid_idx = next(splitter.split(index, groups=pair_cluster))
            valid_clusters = np.isin(clusters[index], np.unique(pair_cluster[valid_idx]))
            # A pair crossing the split (a random forgery) would leak: drop it.
            train_idx = np.flatnonzero(~valid_clusters.any(axis=1))
            valid_idx = np.flatnonzero(valid_clusters.all(axis=1))
            if _has_both_classes(target[train_idx]) and _has_both_classes(target[valid_idx]):
                return train_idx, valid_idx
        if (n_pairs * self.validation_fraction >= 2
                and n_pairs * (1 - self.validation_fraction) >= 2):
            try:
                splitter = StratifiedShuffleSplit(
                    n_splits=1, test_size=self.validation_fraction, random_state=rng
                )
                return next(splitter.split(index, target))
            except ValueError:
                pass
        warnings.warn(
            f"Too few pairs ({n_pairs}) to hold out {self.validation_fraction:.0%} of them "
            "with both classes; the threshold is chosen on the training pairs.",
            UserWarning,
            stacklevel=3,
        )
        return everything, everything[:0]

    def _make_accelerator(self):
        """An ``accelerate.Accelerator`` if ``accelerate`` asks for one, else None."""
        if not isinstance(self.accelerate, dict) and not self.accelerate:
            return None
        if self.micro_batch_size is not None:
            # DDP syncs gradients once per forward; checkpointing runs each chunk twice.
            raise ValueError(
                f"micro_batch_size={self.micro_batch_size} cannot be combined with "
                f"accelerate={self.accelerate!r}; set micro_batch_size=None."
            )
        if self.mixed_precision == "bf16":
            raise ValueError(
                f"mixed_precision='bf16' with accelerate={self.accelerate!r}: Accelerate sets "
                "the training precision; pass accelerate={'mixed_precision': 'bf16'} instead."
            )
        try:
            from accelerate import Accelerator
        except ImportError as err:
            raise ImportError(
                f"accelerate={self.accelerate!r} needs the accelerate package: "
                'pip install "skseg[accelerate]".'
            ) from err
        kwargs = self.accelerate if isinstance(self.accelerate, dict) else {}
        try:
            return Accelerator(**kwargs)
        except TypeError as err:
            raise ValueError(f"accelerate={self.accelerate!r}: {err}") from err

    def _build_net(self, valid=None, seed=None, accelerator=None):
        """The skorch net; trained through ``accelerator`` when one is given."""
        kwargs = self._net_kwargs(valid, seed)
        if accelerator is None:
            return SiameseNet(**kwargs)
        from .nn.accelerated import AcceleratedSiameseNet

        # Accelerate places the module and batches (the bank is already on its
        # device) and sets the precision.
        kwargs["device"] = None
        kwargs["mixed_precision"] = None
        # skorch's "auto" sink (the main process prints) ignores verbose=0; with
        # plain print, PrintLog stays quiet unless verbose.
        sink = "auto" if self.verbose else print
        return AcceleratedSiameseNet(accelerator=accelerator, callbacks__print_log__sink=sink,
                                     **kwargs)

    def _net_kwargs(self, valid, seed):
        criterion_kwargs = {}
        if self.loss == "contrastive":
            criterion_kwargs = {"margin": self.margin, "pos_weight": self.pos_weight,
                                "neg_weight": self.neg_weight}
        elif self.loss == "triplet":
            criterion_kwargs = {"margin": self.margin}
        callbacks = list(self.callbacks or [])
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        nested = {key: getattr(self, key) for key in self._skorch_params
                  if not key.startswith("module__")}
        return dict(
            module=SiameseModule,
            **{f"module__{key}": value for key, value in self._module_kwargs().items()},
            criterion=LOSSES[self.loss],
            **{f"criterion__{k}": v for k, v in criterion_kwargs.items()},
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=predefined_split(valid) if valid is not None else None,
            callbacks=callbacks,
            device=self.device_,
            verbose=int(self.verbose),
            random_state=seed,
            implied_pairs=self.implied_pairs,
            random_negatives=self.random_negatives,
            micro_batch_size=self.micro_batch_size,
            mixed_precision=None if self.mixed_precision == "no" else self.mixed_precision,
            **nested,
        )

    def _module_kwargs(self):
        """The keyword arguments of the :class:`~skseg.nn.SiameseModule` these
        parameters build, nested ``module__`` settings included."""
        nested = {key[len("module__"):]: getattr(self, key) for key in self._skorch_params
                  if key.startswith("module__")}
        return dict(
            backbone=self.backbone,
            embedding_dim=self.embedding_dim,
            distance=self.distance,
            normalize=self.normalize or self.loss == "triplet",
            head=self.loss == "bce",
            augment=self.augment,
            local_weight=self._local_weight(),
            **nested,
        )

    def _weight_shapes(self):
        """Name and shape of each tensor of the network these parameters build (what
        a warm start must match), known before any training: the network is built
        once on the CPU, outside the global random stream."""
        with torch.random.fork_rng(devices=[]):
            module = SiameseModule(**self._module_kwargs())
        return {name: tuple(t.shape) for name, t in module.state_dict().items()}

    def _local_weight(self):
        """``local_weight``, or with ``"auto"`` the default weight where local matching applies."""
        if self.local_weight != "auto":
            return float(self.local_weight)
        backbone = BACKBONES[self.backbone] if isinstance(self.backbone, str) else self.backbone
        applies = self.loss != "bce" and hasattr(backbone, "forward_features")
        return AUTO_LOCAL_WEIGHT if applies else 0.0

    def _size_progress_bar(self, train, valid):
        """skorch sizes its bar as len(dataset) / batch_size, i.e. in pairs; count
        the batches of image instead (one epoch's plan; they vary little)."""
        n_batches = len(self.net_.get_iterator(train, training=True).plan_epoch())
        if valid is not None:
            n_batches += len(self.net_.get_iterator(valid).plan_epoch())
        self.net_.set_params(callbacks__progress_bar__batches_per_epoch=n_batches)

    def _check_backbone_accepts(self, sample):
        """Fail early, naming the backbone, if it cannot take these canvases."""
        try:
            with torch.no_grad():
                self.net_.module_.eval()
                out = self.net_.module_(sample)
        except RuntimeError as err:
            raise ValueError(
                f"backbone={self.backbone!r} cannot process canvases of shape "
                f"{self.canvas_shape_}: {err}"
            ) from err
        module = self.net_._siamese_module()  # unwrapped, when Accelerate wraps it
        # With local matching the embedding is followed by the flattened local map.
        local = int(np.prod(module.local_shape)) if module.local is not None else 0
        if out.shape != (1, self.embedding_dim + local):
            raise ValueError(
                f"backbone={self.backbone!r} returned shape {tuple(out.shape)} for one image; "
                f"expected (1, embedding_dim={self.embedding_dim})"
                + (f" followed by a local map of {local} values." if local else ".")
            )

    # -- threshold and probabilities ------------------------------------------

    def _calibrate(self, distances, target, strategy, target_rate, choose=True):
        """Set ``threshold_`` (if ``choose``) and ``proba_scale_``.

        ``distances`` and ``target`` (1 = genuine) are tensors on one device,
        where the ROC analysis runs.
        """
        if choose:
            self.threshold_ = -choose_threshold(target, -distances, strategy, target_rate)
        else:
            self.threshold_ = float(self.threshold)
        decision = (self.threshold_ - distances).cpu().numpy().reshape(-1, 1)
        # Logistic calibration without intercept: P(genuine) = 0.5 exactly at the threshold.
        calibrator = LogisticRegression(fit_intercept=False, C=1e4)
        calibrator.fit(decision, target.cpu().numpy().astype(int))
        scale = float(calibrator.coef_[0, 0])
        if not np.isfinite(scale) or scale <= 0:  # a useless model: fall back to the spread
            scale = 1.0 / (float(np.std(decision)) + 1e-12)
        self.proba_scale_ = scale

    def calibrate_threshold(self, X, y, strategy=None, target=None):
        """Choose the threshold again on labelled pairs, without retraining.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, H, W)
            Pairs of the user's own data (e.g. of the writers it will serve).
        y : array-like of shape (n_pairs,)
            Labels from ``classes_``; both must be present.
        strategy : {"eer", "accuracy", "youden", "far", "frr"}, optional
            Defaults to ``threshold_strategy``.
        target : float in [0, 1], optional
            FAR or FRR cap; defaults to ``threshold_target``.

        Returns
        -------
        self : SiameseVerifier
        """
        check_is_fitted(self)
        strategy = self.threshold_strategy if strategy is None else strategy
        target = self.threshold_target if target is None else target
        y = column_or_1d(y)
        distances = self._distances(X, numpy=False)
        check_consistent_length(distances.cpu().numpy(), y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(
                f"y has label {y[np.flatnonzero(unknown)[0]]!r}, not one of classes_ "
                f"{self.classes_.tolist()}."
            )
        genuine = torch.as_tensor(y == self.classes_[1], dtype=torch.float32,
                                  device=distances.device)
        self._calibrate(distances, genuine, strategy, target)
        return self

    # -- prediction -------------------------------------------------------------

    def _check_canvas_shape(self, images, what):
        """Prediction needs canvases of the training size: name both if not."""
        if tuple(images.shape[1:]) != self.canvas_shape_:
            raise ValueError(
                f"{what} have canvases of shape {tuple(images.shape[1:])}, but this verifier "
                f"was fitted on {self.canvas_shape_}; preprocess with the same canvas_size."
            )

    def _distances(self, X, numpy=True):
        """Each pair's distance, size, stroke and patch terms included: what the
        threshold applies to."""
        check_is_fitted(self)
        size_distance = size_distances(X)
        bank, index = as_bank(X)
        self._check_canvas_shape(bank, "pairs")
        distances = self.net_.pair_distances(self.net_.embed(bank), index, numpy=numpy)
        if size_distance is not None and not numpy:
            size_distance = torch.as_tensor(size_distance, device=distances.device)
        distances = self._add_size_term(distances, size_distance)
        distances = self._add_stroke_term(distances, stroke_differences(X))
        return self._add_patch_term(distances, X)

    def decision_function(self, X):
        """Signed confidence that each pair is genuine: ``threshold_ - distance``.

        The distance includes the size term (``size_weight_`` times the pair's
        log size ratio), less the stroke term (``stroke_weight_`` times the
        stroke classifier's log-odds) and plus the patch term (``patch_weight_``
        times the patch network's distance) when the verifier has them.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, H, W) or PairedCanvases
            Pairs of canvases (reference, questioned), of the training size.

        Returns
        -------
        ndarray of shape (n_pairs,)
            > 0 for pairs predicted genuine (``classes_[1]``), 0 at the threshold.
        """
        distances = self._distances(X)  # checks the fit first
        return self.threshold_ - distances

    def predict_proba(self, X):
        """Calibrated class probabilities; column 1 is P(genuine pair).

        ``P(genuine) = sigmoid(proba_scale_ * decision_function(X))``, so it is
        at least 0.5 exactly when the pair is predicted genuine.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, H, W) or PairedCanvases
            Pairs of canvases (reference, questioned).

        Returns
        -------
        ndarray of shape (n_pairs, 2)
            Column ``k`` is the probability of ``classes_[k]``.
        """
        decision = self.decision_function(X)
        return _proba_columns(expit(self.proba_scale_ * decision))

    def predict(self, X):
        """Labels from ``classes_``: ``classes_[1]`` where ``decision_function >= 0``.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, H, W) or PairedCanvases
            Pairs of canvases (reference, questioned).

        Returns
        -------
        ndarray of shape (n_pairs,)
            Labels from ``classes_``.
        """
        decision = self.decision_function(X)
        return self.classes_[(decision >= 0).astype(int)]

    def save(self, path):
        """Save this fitted verifier in the safe format; see :func:`skseg.io.save`."""
        from .io import save

        save(self, path)

    def embed(self, images):
        """Embeddings of single canvases, for enrolment and search.

        Parameters
        ----------
        images : array-like of shape (n_images, H, W)
            Canvases like those of the pairs (e.g. ``SignaturePreprocessor``
            applied to a 1-D list of images).

        Returns
        -------
        ndarray of shape (n_images, embedding_dim) or, with ``local_weight_`` > 0,
        (n_images, embedding_dim + local_channels * h * w): the global
        embedding, then the flattened local map (h x w positions).
        """
        check_is_fitted(self)
        images = to_canvases(images, what="images", ndim=3)
        self._check_canvas_shape(images, "images")
        return self.net_.embed(images).cpu().numpy()


def _proba_columns(genuine):
    return np.column_stack([1 - genuine, genuine])


def _equal_error_rate(target, distances):
    """EER of distances (smaller: genuine) against ``target`` (1 = genuine), tensors."""
    fpr, tpr, _ = roc_curve(target, -distances)
    return equal_error_rate_from_roc(fpr, tpr)[0]


def _needed_cue(cue, parameter, value, needs, lacking, attribute):
    """``cue`` (what a pair's two images tell, from X), or a refusal naming
    ``parameter`` when its fixed ``value`` needs the cue and X carries none."""
    if cue is None and value not in ("auto", 0):
        raise ValueError(
            f"{parameter}={value!r} needs {needs}, but X carries none ({lacking}): pass the "
            "pairs through skseg.SignaturePreprocessor(), or give a PairedCanvases with "
            f"{attribute}, or set {parameter}='auto' or 0."
        )
    return cue


def _best_weight(weights, distances, term, target):
    """The weight ``w`` of ``weights`` for which ``distances + w * term`` has the lowest
    EER against ``target`` (tensors; ties go to the smaller weight), and every weight's
    EER."""
    eers = {float(w): float(_equal_error_rate(target, distances + w * term)) for w in weights}
    return min(eers, key=lambda w: (eers[w], w)), eers


def _has_both_classes(target):
    return len(target) > 0 and 0 < target.sum() < len(target)
