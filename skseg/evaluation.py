"""Writer-independent evaluation: the protocol behind every figure skseg reports.

A verifier is only useful on writers it has never seen. Here each fold trains
on some writers and tests on the others (:class:`~sklearn.model_selection.GroupKFold`
by writer); the decision threshold is chosen by the verifier on validation
writers held out of the *training* writers (``validation_fraction``), never on
the test writers.
"""

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.utils import Bunch

from . import __version__
from ._pairs import PairedCanvases
from .datasets import make_pairs
from .datasets._pairs import _items_of
from .metrics import equal_error_rate, far_frr, writer_equal_error_rates
from .preprocessing import SignaturePreprocessor
from .verifier import SiameseVerifier

#: Figures reported per fold and summarised as mean and standard deviation. The
#: ``eer_*_writer`` figures are the mean of each test writer's own EER (a threshold
#: per writer, as many papers report); the others hold for one threshold for all.
METRICS = (
    "eer_skilled",
    "eer_random",
    "eer_skilled_writer",
    "eer_random_writer",
    "auc_skilled",
    "accuracy_skilled",
    "far_skilled",
    "far_random",
    "frr",
    "train_seconds",
)

# Enough to keep every genuine x skilled-forgery combination of a test writer.
_ALL_PAIRS = 1e6


def _pairs_of(positions, writer, genuine, **kwargs):
    """``make_pairs`` on image positions: the pairs come back as positions."""
    subset = Bunch(images=list(positions), paths=None, writer=writer, genuine=genuine)
    return make_pairs(subset, **kwargs)


def cross_validate_writers(
    data,
    verifier=None,
    *,
    preprocessor=None,
    n_splits=5,
    random_forgeries_per_genuine_pair=1.0,
    random_state=0,
    progress=True,
    folds=None,
    extra_training=None,
    pretrain_data=None,
    pretrain_verifier=None,
):
    """Writer-independent k-fold cross-validation of a verifier.

    In each fold the verifier is trained on the pairs of the training writers
    (the SigNet protocol of :func:`~skseg.datasets.make_pairs`), chooses its
    threshold on validation writers carved out of them, and is tested on the
    held-out writers: every genuine-genuine pair and every genuine-skilled
    forgery pair (no subsampling), plus random forgeries (a genuine signature
    of another test writer), reported separately.

    Every image is preprocessed once, and all pairs refer to that one bank of
    canvases (:class:`~skseg.PairedCanvases`), with each image's ink size.

    Parameters
    ----------
    data : Bunch
        From :func:`~skseg.datasets.load_signatures` or
        :func:`~skseg.datasets.make_synthetic_signatures`.
    verifier : SiameseVerifier, default=None
        Cloned for each fold; ``SiameseVerifier()`` (the defaults) if None.
    preprocessor : SignaturePreprocessor, default=None
        ``SignaturePreprocessor()`` if None.
    n_splits : int, default=5
        Number of writer folds.
    random_forgeries_per_genuine_pair : float, default=1.0
        Random-forgery test pairs per genuine test pair.
    random_state : int, default=0
        Seeds pair sampling; the verifier keeps its own ``random_state``.
    progress : bool, default=True
        Show a progress bar over the folds.
    folds : list of int, default=None
        Run only these folds of the ``n_splits`` (e.g. to spread them over
        machines); all by default.
    extra_training : Bunch, default=None
        Another corpus, in the form of ``data``, whose SigNet pairs join the
        training pairs of every fold; its writers are never tested. Its writers
        must be other people than those of ``data`` (e.g. another public data
        set), or the test writers would be seen in training.
    pretrain_data : Bunch, default=None
        Another corpus (other people, as for ``extra_training``) to pretrain on:
        ``pretrain_verifier`` is trained once on every writer of it, and each
        fold's verifier then starts from those weights (``warm_start``) and is
        fine-tuned on the fold's training writers with its own parameters (a
        lower ``lr`` and fewer ``max_epochs`` than the defaults suit it; see the
        measured recipe in the user guide). Its images are preprocessed by
        ``preprocessor``.
    pretrain_verifier : SiameseVerifier, default=None
        The verifier trained on ``pretrain_data`` (cloned, and trained from new
        weights whatever its ``warm_start``). By default
        ``verifier`` with the default training schedule (``lr``,
        ``max_epochs``) and ``validation_fraction=0``: its threshold is never
        used, so every writer trains. It must build the network ``verifier``
        builds (same backbone, ``embedding_dim``, loss, local matching); one
        that does not is refused before any training.

    Returns
    -------
    result : dict
        ``folds``: one dict per fold with the figures of :data:`METRICS`, the
        writers tested and pair counts; ``summary``: ``{metric: {"mean", "std"}}``;
        ``environment``: device, CPU capability, versions, machine; ``settings``:
        the verifier's and preprocessor's parameters, and what was pretrained on.
        ``scores`` (not written to JSON): per fold, the test labels, kinds,
        decision values and claimed writers. ``pretrained`` (not written to
        JSON): the verifier trained on ``pretrain_data``, or None.

    Examples
    --------
    >>> from skseg import SiameseVerifier, SignaturePreprocessor
    >>> from skseg.datasets import make_synthetic_signatures
    >>> from skseg.evaluation import cross_validate_writers
    >>> data = make_synthetic_signatures(n_writers=6, n_genuine=4, n_forgeries=4,
    ...                                  random_state=0)
    >>> result = cross_validate_writers(
    ...     data, SiameseVerifier(max_epochs=1, random_state=0),
    ...     preprocessor=SignaturePreprocessor(canvas_size=(40, 60)),
    ...     n_splits=3, progress=False)
    >>> len(result["folds"]), sorted(result["summary"]["eer_skilled"])
    (3, ['mean', 'std'])
    """
    verifier = SiameseVerifier() if verifier is None else verifier
    preprocessor = SignaturePreprocessor() if preprocessor is None else preprocessor
    # The images as make_pairs sees them (an object array), with checked labels.
    items, writer, genuine = _items_of(data)
    n_writers = len(np.unique(writer))
    if n_writers < n_splits:
        raise ValueError(f"n_splits={n_splits} folds need as many writers; "
                         f"the data has {n_writers}.")

    if pretrain_verifier is not None and pretrain_data is None:
        raise ValueError("pretrain_verifier is trained on pretrain_data, which is None: "
                         "give the corpus to pretrain on, or leave pretrain_verifier out.")
    extra = None if extra_training is None else _extra_corpus(extra_training, items)
    pretraining = (None if pretrain_data is None
                   else _extra_corpus(pretrain_data, items, name="pretrain_data"))

    canvases, sizes, strokes, masks = _cues(preprocessor, items)
    positions = np.arange(len(canvases))
    extra_pairs, extra_y = np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=int)
    if extra is not None:
        # One bank for both corpora: the extra canvases follow the main ones.
        extra_cues = _cues(preprocessor, extra.images)
        canvases, sizes, strokes, masks = (
            None if main is None else np.concatenate([main, more])
            for main, more in zip((canvases, sizes, strokes, masks), extra_cues))
        extra_pairs, extra_y, _ = _pairs_of(np.arange(len(items), len(canvases)), extra.writer,
                                            extra.genuine, random_state=random_state)
    splits = list(enumerate(GroupKFold(n_splits=n_splits).split(positions, groups=writer)))
    if folds is not None:
        unknown = sorted(set(folds) - set(range(n_splits)))
        if unknown:
            raise ValueError(f"folds={list(folds)}: fold(s) {unknown} do not exist; "
                             f"there are {n_splits} (0 to {n_splits - 1}).")
        splits = [splits[k] for k in sorted(set(folds))]
    pretrained, pretrain_settings = None, None
    if pretraining is not None:
        if pretrain_verifier is None:
            pretrain_verifier = _default_pretrain_verifier(verifier)
        _check_same_network(pretrain_verifier, verifier)
        # After the checks: pretraining takes minutes.
        start = time.perf_counter()  # preprocessing included
        pretrained = _pretrain(pretrain_verifier, pretraining, preprocessor, random_state)
        pretrain_settings = {
            "n_writers": int(len(np.unique(pretraining.writer))),
            "n_images": int(len(pretraining.images)),
            "seconds": time.perf_counter() - start,
            # The model trained, not its template: _pretrain sets warm_start=False.
            "verifier": _jsonable(pretrained.get_params(deep=False)),
        }
    results, scores = [], []
    iterator = splits
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(splits, desc="writer folds", unit="fold")
    for k, (train, test) in iterator:
        fold_verifier = (clone(verifier) if pretrained is None
                         else _fine_tuning_clone(verifier, pretrained))
        train_pairs, y_train, _ = _pairs_of(
            positions[train], writer[train], genuine[train], random_state=random_state + k
        )
        test_pairs, y_test, claimed_writer, kind = _pairs_of(
            positions[test], writer[test], genuine[test],
            n_forgeries_per_genuine_pair=_ALL_PAIRS,
            random_forgeries=random_forgeries_per_genuine_pair,
            return_kind=True, random_state=random_state + k,
        )
        train_pairs = np.concatenate([train_pairs, extra_pairs]).astype(np.int64)
        y_train = np.concatenate([y_train, extra_y])
        start = time.perf_counter()
        fold_verifier.fit(PairedCanvases(canvases, train_pairs, sizes, strokes, masks), y_train)
        train_seconds = time.perf_counter() - start
        decision = fold_verifier.decision_function(
            PairedCanvases(canvases, test_pairs.astype(np.int64), sizes, strokes, masks)
        )
        results.append({
            "fold": k,
            "test_writers": sorted(set(writer[test].tolist())),
            "n_train_pairs": int(len(y_train)),
            "n_test_pairs": {name: int((kind == name).sum())
                             for name in ("genuine", "skilled", "random")},
            "threshold": float(fold_verifier.threshold_),
            "validation_eer": float(fold_verifier.validation_eer_),
            "size_weight": float(fold_verifier.size_weight_),
            "stroke_weight": float(fold_verifier.stroke_weight_),
            # The validation writers' EER per weight: how sharply they chose it.
            "stroke_weight_eers": {f"{w:g}": e for w, e in
                                   fold_verifier.stroke_weight_eers_.items()},
            "patch_weight": float(fold_verifier.patch_weight_),
            "patch_weight_eers": {f"{w:g}": e for w, e in
                                  fold_verifier.patch_weight_eers_.items()},
            **_fold_metrics(y_test, kind, decision, claimed_writer),
            "train_seconds": train_seconds,
        })
        scores.append({"y": y_test, "kind": kind, "decision": decision,
                       "writer": claimed_writer})
        device = fold_verifier.device_

    summary = {
        name: {"mean": float(np.mean([f[name] for f in results])),
               "std": float(np.std([f[name] for f in results]))}
        for name in METRICS
    }
    return {
        "folds": results,
        "summary": summary,
        "environment": _environment(device),
        "settings": {
            "verifier": _jsonable(verifier.get_params(deep=False)),
            "preprocessor": _jsonable(preprocessor.get_params(deep=False)),
            "n_splits": n_splits,
            "n_writers": n_writers,
            "n_images": len(items),
            "extra_training": None if extra is None else {
                "n_writers": int(len(np.unique(extra.writer))),
                "n_images": int(len(extra.images)),
                "n_pairs": int(len(extra_pairs)),
            },
            "pretraining": pretrain_settings,
            "random_state": random_state,
        },
        "scores": scores,
        "pretrained": pretrained,
    }


def _default_pretrain_verifier(verifier):
    """``verifier`` with the defaults' training schedule and every writer training:
    what :func:`cross_validate_writers` pretrains unless told otherwise."""
    defaults = SiameseVerifier().get_params(deep=False)
    return clone(verifier).set_params(lr=defaults["lr"], max_epochs=defaults["max_epochs"],
                                      validation_fraction=0.0, warm_start=False)


def _check_same_network(pretrain_verifier, verifier):
    """Refuse, before any training, a ``pretrain_verifier`` whose network the folds'
    verifiers could not start from (a warm start needs every tensor's name and shape)."""
    pretrain_verifier._validate_params()  # the parameters' own errors come first
    verifier._validate_params()
    theirs, ours = pretrain_verifier._weight_shapes(), verifier._weight_shapes()
    if theirs == ours:
        return
    differ = [f"{key}: {theirs.get(key, 'absent')} in pretrain_verifier, "
              f"{ours.get(key, 'absent')} in verifier"
              for key in sorted(theirs.keys() | ours.keys()) if theirs.get(key) != ours.get(key)]
    raise ValueError(
        "pretrain_verifier builds another network than verifier, so the folds could not "
        f"start from its weights ({len(differ)} tensor(s) differ, e.g. {'; '.join(differ[:3])}). "
        "Give both the same backbone, embedding_dim, loss and local_weight."
    )


def _pretrain(verifier, corpus, preprocessor, random_state):
    """A clone of ``verifier`` trained on the SigNet pairs of every writer of ``corpus``
    (a Bunch of images, writer and genuine, as :func:`_extra_corpus` returns)."""
    canvases, sizes, strokes, masks = _cues(preprocessor, corpus.images)
    pairs, y, _ = _pairs_of(np.arange(len(canvases)), corpus.writer, corpus.genuine,
                            random_state=random_state)
    model = clone(verifier).set_params(warm_start=False)
    return model.fit(PairedCanvases(canvases, pairs.astype(np.int64), sizes, strokes, masks), y)


def _cues(preprocessor, images):
    """Canvases, ink sizes, stroke descriptors and stroke-scale masks of ``images``
    (None for what ``preprocessor`` is not asked to keep)."""
    if preprocessor.stroke_masks:
        return preprocessor.transform_with_cues(images, return_masks=True)
    return (*preprocessor.transform_with_cues(images), None)


def _fine_tuning_clone(verifier, pretrained):
    """A clone of ``verifier`` that holds ``pretrained``'s fitted network and starts its
    fit from those weights (``warm_start``); ``pretrained`` is left as it is."""
    clone_ = clone(verifier).set_params(warm_start=True)
    # A warm start reads the last fit's network only; the fit builds its own.
    clone_.net_ = pretrained.net_
    return clone_


def _extra_corpus(extra_training, items, name="extra_training"):
    """The extra corpus's images and labels; refused if it shares a file with ``items``
    (``name``: the parameter the corpus came in, for the message)."""
    extra_items, writer, genuine = _items_of(extra_training)

    def files(images):  # one spelling per file, however the paths were written
        return {os.path.realpath(i) for i in images if isinstance(i, str)}

    shared = sorted(files(items) & files(extra_items))
    if shared:
        raise ValueError(f"{name} shares {len(shared)} image file(s) with data, e.g. "
                         f"{shared[0]!r}: its writers would be tested after training on them.")
    return Bunch(images=extra_items, writer=writer, genuine=genuine)


def _fold_metrics(y, kind, decision, writer=None):
    """The figures of one fold's test pairs; with each pair's claimed ``writer``, also
    the mean of the writers' own EERs (``eer_*_writer``, a threshold per writer)."""
    skilled = kind != "random"
    random = kind != "skilled"
    has_random = (kind == "random").any()
    far_s, frr = far_frr(y[skilled], decision[skilled], 0.0)
    far_r, _ = far_frr(y[random], decision[random], 0.0) if has_random else (np.nan, 0)
    eer_r = equal_error_rate(y[random], decision[random])[0] if has_random else np.nan
    metrics = {
        "eer_skilled": equal_error_rate(y[skilled], decision[skilled])[0],
        "eer_random": eer_r,
        "auc_skilled": float(roc_auc_score(y[skilled], decision[skilled])),
        "accuracy_skilled": float(np.mean((decision[skilled] >= 0) == (y[skilled] == 1))),
        "far_skilled": far_s,
        "far_random": far_r,
        "frr": frr,
    }
    if writer is not None:
        def mean_writer_eer(rows):
            eers = list(writer_equal_error_rates(y[rows], decision[rows], writer[rows]).values())
            # A writer with no forgery of this kind has no EER; the others still count.
            return float(np.nanmean(eers)) if not np.isnan(eers).all() else np.nan

        metrics["eer_skilled_writer"] = mean_writer_eer(skilled)
        metrics["eer_random_writer"] = mean_writer_eer(random) if has_random else np.nan
    return metrics


#: Libraries whose versions a report records: each can move the figures (scikit-learn
#: fits the stroke term, the others train or preprocess).
_REPORTED_LIBRARIES = ("scikit-learn", "skorch", "numpy", "scipy", "torchvision", "pillow")


def _numpy_simd():
    """The SIMD extensions numpy dispatches to on this CPU beyond its baseline, or
    None where numpy cannot say (before 1.25, no ``show_config(mode="dicts")``)."""
    try:
        return list(np.show_config(mode="dicts")["SIMD Extensions"]["found"])
    except (TypeError, KeyError):
        return None


def _environment(device):
    return {
        "device": device,
        "device_name": (torch.cuda.get_device_name(0) if str(device).startswith("cuda")
                        else platform.processor() or platform.machine()),
        "cpu_threads": torch.get_num_threads(),
        # The vector instructions torch's CPU kernels use (e.g. AVX2, AVX512): they
        # round differently, so one seed trains another network on another kind of CPU.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # numpy's too (e.g. X86_V4 for AVX-512): they move the stroke descriptors'
        # last digits, and with them the stroke term's trees.
        "numpy_simd": _numpy_simd(),
        "torch": torch.__version__,
        "skseg": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: metadata.version(name) for name in _REPORTED_LIBRARIES},
    }


def _jsonable(params):
    out = {}
    for key, value in params.items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[key] = value
        elif isinstance(value, (tuple, list)) and all(
                isinstance(v, (int, float, str)) for v in value):
            out[key] = list(value)
        else:
            out[key] = getattr(value, "__name__", repr(value))
    return out


def write_report(result, path):
    """Write ``result`` as JSON, with ROC and DET plots (PNG) next to it.

    Parameters
    ----------
    result : dict
        From :func:`cross_validate_writers`.
    path : str or Path
        The JSON file; the plots are ``<stem>_roc.png`` and ``<stem>_det.png``
        (written when matplotlib is installed).

    Returns
    -------
    written : list of Path
        The files written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The scores are arrays and the pretrained model is no JSON: the plots and
    # skseg.save are their forms.
    report = {key: value for key, value in result.items() if key not in ("scores", "pretrained")}
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    written = [path]
    try:
        # A bare Figure draws without pyplot, leaving the user's backend alone.
        from matplotlib.figure import Figure
        from sklearn.metrics import DetCurveDisplay, RocCurveDisplay
    except ImportError:
        return written
    for name, display in (("roc", RocCurveDisplay), ("det", DetCurveDisplay)):
        fig = Figure(figsize=(5, 5))
        ax = fig.subplots()
        for fold in result["scores"]:
            skilled = fold["kind"] != "random"
            display.from_predictions(fold["y"][skilled], fold["decision"][skilled], ax=ax,
                                     name=f"fold {len(ax.get_lines())}")
        ax.set_title(f"{name.upper()}, skilled forgeries, held-out writers")
        out = path.with_name(f"{path.stem}_{name}.png")
        fig.savefig(out, dpi=100, bbox_inches="tight")
        written.append(out)
    return written
