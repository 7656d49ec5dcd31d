"""The safe model format: round trips, and refusal of anything else."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.base import clone
from sklearn.pipeline import Pipeline

import skseg
from skseg import SiameseVerifier, SignaturePreprocessor

from .conftest import CANVAS, TinyBackbone


def test_verifier_round_trip(tmp_path, fitted_verifier, signature_pairs):
    X = signature_pairs["X_test"]
    fitted_verifier.save(tmp_path / "m.safetensors")
    # On the device it was fitted on (the CPU, unless a GPU is here): bit for bit.
    # GPU to CPU: tests/test_precision_and_device.py.
    loaded = skseg.load(tmp_path / "m.safetensors", device=fitted_verifier.device_)
    assert isinstance(loaded, SiameseVerifier)
    np.testing.assert_array_equal(loaded.decision_function(X), fitted_verifier.decision_function(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_verifier.predict_proba(X))
    np.testing.assert_array_equal(loaded.embed(X[:3, 0]), fitted_verifier.embed(X[:3, 0]))
    assert loaded.classes_.tolist() == fitted_verifier.classes_.tolist()
    assert loaded.get_params()["margin"] == fitted_verifier.margin


def test_pipeline_round_trip_with_string_labels(tmp_path, signature_pairs):
    keep = np.isin(signature_pairs["groups"], np.unique(signature_pairs["groups"])[:4])
    pairs = signature_pairs["raw_pairs"][keep]
    y = np.where(signature_pairs["y"][keep] == 1, "genuine", "forged")
    pipe = Pipeline([("prep", SignaturePreprocessor(canvas_size=CANVAS)),
                     ("clf", SiameseVerifier(max_epochs=1, random_state=0))]).fit(pairs, y)
    skseg.save(pipe, tmp_path / "p.safetensors")
    loaded = skseg.load(tmp_path / "p.safetensors", device=pipe[-1].device_)
    assert isinstance(loaded, Pipeline)
    assert loaded.named_steps["prep"].canvas_size == CANVAS
    np.testing.assert_array_equal(loaded.predict(pairs), pipe.predict(pairs))
    assert loaded.named_steps["clf"].classes_.tolist() == ["forged", "genuine"]


def test_the_file_holds_no_optimizer_state(tmp_path, fitted_verifier):
    fitted_verifier.save(tmp_path / "m.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        header = json.loads(f.metadata()["skseg"])
    assert all(k.startswith(("backbone.", "head.", "local.")) for k in keys)
    assert "optimizer" not in header["verifier"]["params"]


def test_unfitted_and_custom_models_are_refused(tmp_path, signature_pairs):
    with pytest.raises(Exception, match="not fitted"):
        SiameseVerifier().save(tmp_path / "x.safetensors")

    clf = SiameseVerifier(backbone=TinyBackbone, embedding_dim=4, max_epochs=1, random_state=0)
    clf.fit(signature_pairs["X_train"], signature_pairs["y_train"])
    with pytest.raises(ValueError, match="named backbones only"):
        clf.save(tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="takes a SiameseVerifier or a Pipeline"):
        skseg.save(SignaturePreprocessor(), tmp_path / "x.safetensors")


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all", b"\x80\x04pickle"])
def test_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.safetensors"):
        skseg.load(path)


def test_safetensors_without_skseg_header_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="no skseg header"):
        skseg.load(path)
    save_file({"w": torch.zeros(2)}, str(path),
              metadata={"skseg": json.dumps({"format": "skseg.verifier", "format_version": 99})})
    with pytest.raises(ValueError, match="version 99"):
        skseg.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        skseg.load(tmp_path / "missing.safetensors")


def test_weights_that_do_not_fit_are_refused(tmp_path, fitted_verifier):
    fitted_verifier.save(tmp_path / "m.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        metadata = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    state.pop(next(iter(state)))
    save_file(state, str(tmp_path / "broken.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match="do not fit the saved settings"):
        skseg.load(tmp_path / "broken.safetensors")


def test_refit_after_load_works(tmp_path, fitted_verifier, signature_pairs):
    fitted_verifier.save(tmp_path / "m.safetensors")
    loaded = clone(skseg.load(tmp_path / "m.safetensors"))
    loaded.set_params(max_epochs=1).fit(signature_pairs["X_train"], signature_pairs["y_train"])
    assert loaded.predict(signature_pairs["X_test"]).shape == (len(signature_pairs["X_test"]),)
