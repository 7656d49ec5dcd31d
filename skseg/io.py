"""Saving and loading fitted verifiers in a format that runs no code on load.

``joblib.dump`` works on every skseg estimator, but loading a pickle can run
arbitrary code: never load one from a source you do not trust. :func:`save`
writes one ``.safetensors`` file instead: the network weights as tensors and
the settings and fitted values as JSON in the file's header (the stroke
classifier's trees as tensors of their nodes, the patch network's weights as
tensors too). :func:`load`
reads only that, rebuilds the model from the package's own classes, and
refuses anything else. The optimizer state is not saved: the loaded model
predicts, and can be refitted or fine-tuned from its weights with a new
optimizer (``warm_start=True``), but not trained further where it stopped.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from . import __version__
from ._boosting import BoostedTrees
from .nn import BACKBONES
from .patches import PatchNet
from .preprocessing import SignaturePreprocessor
from .verifier import SiameseVerifier

FORMAT = "skseg.verifier"
# 2: adds the stroke term (its weight and trees); 3: the patch term (its weight,
# median and network). Files of earlier versions still load.
FORMAT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
# Tensor names of the stroke classifier's arrays and of the patch network's weights,
# apart from the Siamese network's weights.
_STROKE_PREFIX = "stroke_model."
_PATCH_PREFIX = "patch_net."

# Verifier parameters that only matter for training; a loaded model keeps the defaults.
_TRAINING_ONLY = ("optimizer", "callbacks", "accelerate")


def _json_value(name, value):
    """A parameter as JSON, or a clear refusal naming it."""
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(
            f"cannot save parameter {name}={value!r} in the safe format (it is not plain "
            "data); use joblib.dump for such a model, and load it only from a trusted source."
        ) from None
    return value


def _verifier_settings(verifier):
    check_is_fitted(verifier)
    if not isinstance(verifier.backbone, str) or verifier.backbone not in BACKBONES:
        raise ValueError(
            f"the safe format stores named backbones only {sorted(BACKBONES)}; got "
            f"backbone={verifier.backbone!r}. Use joblib.dump for a custom backbone class."
        )
    params = {
        name: _json_value(name, value)
        for name, value in verifier.get_params(deep=False).items()
        if name not in _TRAINING_ONLY and not name.startswith(("optimizer__", "callbacks__"))
    }
    classes = verifier.classes_
    return {
        "params": params,
        "classes": classes.tolist(),
        "classes_dtype": classes.dtype.str,
        "threshold": float(verifier.threshold_),
        "size_weight": float(verifier.size_weight_),
        "stroke_weight": float(verifier.stroke_weight_),
        # JSON keys are strings: the weight curves go as [weight, EER] rows.
        "size_weight_eers": [[w, e] for w, e in verifier.size_weight_eers_.items()],
        "stroke_weight_eers": [[w, e] for w, e in verifier.stroke_weight_eers_.items()],
        "patch_weight": float(verifier.patch_weight_),
        "patch_weight_eers": [[w, e] for w, e in verifier.patch_weight_eers_.items()],
        "patch_median": float(verifier.patch_median_),
        "proba_scale": float(verifier.proba_scale_),
        "validation_eer": float(verifier.validation_eer_),
        "canvas_shape": list(verifier.canvas_shape_),
    }


def save(model, path):
    """Save a fitted verifier, or a fitted preprocessor + verifier pipeline.

    Parameters
    ----------
    model : SiameseVerifier or Pipeline
        A fitted :class:`~skseg.SiameseVerifier`, or a
        :class:`~sklearn.pipeline.Pipeline` of a
        :class:`~skseg.SignaturePreprocessor` followed by one.
    path : str or Path
        The file to write (conventionally ``*.safetensors``).

    Examples
    --------
    >>> import skseg, tempfile, os
    >>> from sklearn.pipeline import make_pipeline
    >>> from skseg import SiameseVerifier, SignaturePreprocessor
    >>> from skseg.datasets import make_pairs, make_synthetic_signatures
    >>> data = make_synthetic_signatures(n_writers=3, n_genuine=3, n_forgeries=3,
    ...                                  random_state=0)
    >>> pairs, y, _ = make_pairs(data, random_state=0)
    >>> model = make_pipeline(SignaturePreprocessor(canvas_size=(40, 60)),
    ...                       SiameseVerifier(max_epochs=1, random_state=0)).fit(pairs, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "verifier.safetensors")
    >>> skseg.save(model, path)
    >>> loaded = skseg.load(path, device="auto")  # where it was fitted: a GPU if any
    >>> bool((loaded.decision_function(pairs) == model.decision_function(pairs)).all())
    True
    """
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "skseg_version": __version__}
    verifier = model
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        if (len(steps) != 2 or not isinstance(steps[0], SignaturePreprocessor)
                or not isinstance(steps[1], SiameseVerifier)):
            raise ValueError(
                "save takes a SiameseVerifier or a Pipeline of (SignaturePreprocessor, "
                f"SiameseVerifier); got a Pipeline of {[type(s).__name__ for s in steps]}."
            )
        header["preprocessor"] = {
            name: _json_value(name, value)
            for name, value in steps[0].get_params(deep=False).items()
        }
        header["step_names"] = [name for name, _ in model.steps]
        verifier = steps[1]
    elif not isinstance(model, SiameseVerifier):
        raise TypeError(
            f"save takes a SiameseVerifier or a Pipeline ending in one; got {type(model).__name__}."
        )
    header["verifier"] = _verifier_settings(verifier)
    state = {k: v.detach().cpu().contiguous()
             for k, v in verifier.net_.module_.state_dict().items()}
    if verifier.stroke_model_ is not None:
        state.update({_STROKE_PREFIX + name: torch.from_numpy(np.ascontiguousarray(array))
                      for name, array in verifier.stroke_model_.as_arrays().items()})
    if verifier.patch_net_ is not None:
        state.update({_PATCH_PREFIX + name: tensor.detach().cpu().contiguous()
                      for name, tensor in verifier.patch_net_.state_dict().items()})
    save_file(state, str(path), metadata={"skseg": json.dumps(header)})


def load(path, device="cpu"):
    """Load a model written by :func:`save`; nothing in the file is executed.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save`.
    device : str, default="cpu"
        Where the loaded model computes (``"cuda"``, ``"auto"``, ...).

    Returns
    -------
    model : SiameseVerifier or Pipeline
        What was saved, ready to predict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:  # safetensors raises its own error types for bad files
        raise ValueError(f"{str(path)!r} is not a safetensors file written by skseg.save: "
                         f"{err}") from err
    try:
        header = json.loads(metadata["skseg"])
    except (KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(path)!r} has no skseg header; "
                         "it was not written by skseg.save.") from err
    if header.get("format") != FORMAT or header.get("format_version") not in _READABLE_VERSIONS:
        raise ValueError(
            f"{str(path)!r} is in format {header.get('format')!r} version "
            f"{header.get('format_version')!r}; this skseg reads {FORMAT!r} "
            f"versions {list(_READABLE_VERSIONS)}."
        )
    verifier = _rebuild_verifier(header["verifier"], state, device, path)
    if "preprocessor" not in header:
        return verifier
    params = header["preprocessor"]
    if isinstance(params.get("canvas_size"), list):
        params["canvas_size"] = tuple(params["canvas_size"])
    names = header.get("step_names", ["prep", "clf"])
    return Pipeline([(names[0], SignaturePreprocessor(**params)), (names[1], verifier)])


def _rebuild_verifier(settings, state, device, path):
    params = dict(settings["params"])
    if params.get("backbone") not in BACKBONES:
        raise ValueError(f"{str(path)!r} names an unknown backbone {params.get('backbone')!r}.")
    params["device"] = device
    params.setdefault("local_weight", 0.0)  # files from before local matching
    verifier = SiameseVerifier(**params)
    verifier.device_ = verifier._resolve_device()
    verifier.classes_ = np.asarray(settings["classes"], dtype=np.dtype(settings["classes_dtype"]))
    verifier.threshold_ = settings["threshold"]
    verifier.size_weight_ = settings.get("size_weight", 0.0)  # files from before the size term
    verifier.stroke_weight_ = settings.get("stroke_weight", 0.0)  # version 1 files
    # Files from before the weight curves were saved have none.
    verifier.size_weight_eers_ = dict(settings.get("size_weight_eers", []))
    verifier.stroke_weight_eers_ = dict(settings.get("stroke_weight_eers", []))
    stroke_arrays = {key[len(_STROKE_PREFIX):]: state.pop(key).numpy()
                     for key in list(state) if key.startswith(_STROKE_PREFIX)}
    verifier.stroke_model_ = None
    if verifier.stroke_weight_ > 0:
        try:
            verifier.stroke_model_ = BoostedTrees(stroke_arrays)
        except ValueError as err:
            raise ValueError(f"{str(path)!r}: the stroke term's trees are incomplete: "
                             f"{err}") from err
    _rebuild_patch_term(verifier, settings, state, path)
    verifier.local_weight_ = verifier._local_weight()
    verifier.proba_scale_ = settings["proba_scale"]
    verifier.validation_eer_ = settings["validation_eer"]
    verifier.canvas_shape_ = tuple(settings["canvas_shape"])
    verifier.net_ = verifier._build_net(valid=None, seed=None)
    verifier.net_.initialize()
    try:
        verifier.net_.module_.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{str(path)!r}: the weights do not fit the saved settings: "
                         f"{err}") from err
    verifier.net_.module_.to(verifier.device_).eval()
    return verifier


def _rebuild_patch_term(verifier, settings, state, path):
    """Set the patch term's fitted values, and take its network's weights out of
    ``state`` (files from before the patch term have none)."""
    patch_state = {key[len(_PATCH_PREFIX):]: state.pop(key)
                   for key in list(state) if key.startswith(_PATCH_PREFIX)}
    verifier.patch_weight_ = settings.get("patch_weight", 0.0)
    verifier.patch_weight_eers_ = dict(settings.get("patch_weight_eers", []))
    verifier.patch_median_ = settings.get("patch_median", float("nan"))
    verifier.patch_net_ = None
    if verifier.patch_weight_ == 0:
        return
    if "head.weight" not in patch_state:
        raise ValueError(f"{str(path)!r}: the patch term's network weights are missing.")
    net = PatchNet(n_classes=patch_state["head.weight"].shape[0])
    try:
        net.load_state_dict(patch_state)
    except RuntimeError as err:
        raise ValueError(f"{str(path)!r}: the patch network's weights do not fit it: "
                         f"{err}") from err
    verifier.patch_net_ = net.to(verifier.device_).eval()
