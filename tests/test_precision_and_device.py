"""mixed_precision, memory layout, and training on a CUDA GPU.

The CPU tests run everywhere (CI has no GPU). The tests marked ``cuda`` run only
where torch sees a CUDA device; they were run on an H100 (see the performance
page of the docs for the command).
"""

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone

import skseg
from skseg import SiameseVerifier
from skseg.nn import PairBatches, PairDataset
from skseg.nn.siamese import SiameseModule

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _fit(signature_pairs, **params):
    params = {"max_epochs": 1, "random_state": 0, **params}
    return SiameseVerifier(**params).fit(signature_pairs["X_train"], signature_pairs["y_train"])


def _conv_output_dtypes(model, X):
    """dtypes of the backbone's convolution outputs while ``model`` scores ``X``."""
    seen = []
    convs = [m for m in model.net_.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda m, i, out: seen.append(out.dtype)) for m in convs]
    try:
        model.decision_function(X)
    finally:
        for hook in hooks:
            hook.remove()
    return set(seen)


def test_float32_by_default(signature_pairs):
    model = _fit(signature_pairs, device="cpu")
    assert model.mixed_precision == "no" and model.net_.mixed_precision is None
    assert _conv_output_dtypes(model, signature_pairs["X_test"][:4]) == {torch.float32}


def test_bf16_runs_the_backbone_in_bfloat16_and_keeps_float32_outputs(signature_pairs):
    model = _fit(signature_pairs, mixed_precision="bf16", device="cpu")
    X = signature_pairs["X_test"]
    assert model.net_.mixed_precision == "bf16"
    assert _conv_output_dtypes(model, X[:4]) == {torch.bfloat16}
    # Embeddings, distances and probabilities stay float32 / float64, and finite.
    assert model.embed(X[:3, 0]).dtype == np.float32
    assert np.isfinite(model.decision_function(X)).all()
    assert all(p.dtype == torch.float32 for p in model.net_.module_.parameters())
    # The same weights in float32 give nearly the same distances: bf16 rounds, no more.
    model.net_.mixed_precision = None
    full = model.decision_function(X)
    model.net_.mixed_precision = "bf16"
    np.testing.assert_allclose(model.decision_function(X), full, atol=0.05)


def test_no_keeps_float32(signature_pairs):
    model = _fit(signature_pairs, mixed_precision="no", device="cpu")
    assert model.net_.mixed_precision is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mixed_precision": "fp16"}, "'mixed_precision' parameter"),
        ({"mixed_precision": "bf16", "accelerate": True}, "pass accelerate=.*mixed_precision"),
    ],
)
def test_bad_precision_settings_are_named(signature_pairs, params, match):
    with pytest.raises(ValueError, match=match):
        _fit(signature_pairs, **params)


def test_the_net_names_a_precision_it_does_not_know(fitted_verifier):
    net = fitted_verifier.net_
    net.mixed_precision = "fp16"
    try:
        with pytest.raises(ValueError, match="mixed_precision='fp16': expected None or 'bf16'"):
            net.embed(np.zeros((1, *fitted_verifier.canvas_shape_), dtype=np.uint8))
    finally:
        net.mixed_precision = None


def test_safe_format_keeps_the_precision_setting(tmp_path, signature_pairs):
    model = _fit(signature_pairs, mixed_precision="bf16", device="cpu")
    skseg.save(model, tmp_path / "m.safetensors")
    loaded = skseg.load(tmp_path / "m.safetensors")
    assert loaded.mixed_precision == "bf16" and loaded.net_.mixed_precision == "bf16"
    X = signature_pairs["X_test"]
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))


def test_channels_last_and_default_layout_compute_the_same():
    torch.manual_seed(0)
    last = SiameseModule("compact", 16, channels_last=True).eval()
    plain = SiameseModule("compact", 16, channels_last=False).eval()
    plain.load_state_dict(last.state_dict())

    # (A one-channel weight is laid out alike either way: look at a wider one.)
    def wide_conv(module):
        return next(m for m in module.modules()
                    if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)

    assert wide_conv(plain).weight.is_contiguous()
    assert wide_conv(last).weight.is_contiguous(memory_format=torch.channels_last)
    assert not wide_conv(last).weight.is_contiguous()
    images = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(plain(images), last(images), atol=1e-5, rtol=1e-4)


# -- on a CUDA GPU ------------------------------------------------------------------


@cuda
def test_batches_are_gathered_on_the_gpu_from_a_uint8_bank():
    images = torch.randint(0, 256, (12, 8, 10), dtype=torch.uint8, device="cuda")
    pairs = np.array([[0, 1], [2, 3], [4, 5], [0, 6]])
    batches = PairBatches(PairDataset(images, pairs, [1, 1, 1, 0]), batch_size=6,
                          implied_pairs=True)
    for X, y in batches:
        assert X["images"].device.type == "cuda" and X["images"].dtype == torch.uint8
        assert y["pairs"].device.type == "cuda" and y["target"].device.type == "cuda"


@cuda
@pytest.mark.parametrize("mixed_precision", ["bf16", "no"])
def test_gpu_fit_predicts_the_same_on_the_cpu_after_a_safe_round_trip(
        tmp_path, signature_pairs, mixed_precision):
    X = signature_pairs["X_test"]
    model = _fit(signature_pairs, device="cuda", mixed_precision=mixed_precision, max_epochs=2)
    assert model.device_ == "cuda"
    assert model.net_.mixed_precision == (None if mixed_precision == "no" else "bf16")
    on_gpu = model.decision_function(X)
    skseg.save(model, tmp_path / "m.safetensors")

    again = skseg.load(tmp_path / "m.safetensors", device="cuda")
    np.testing.assert_array_equal(again.decision_function(X), on_gpu)

    on_cpu = skseg.load(tmp_path / "m.safetensors")  # the default: the CPU
    assert on_cpu.device_ == "cpu" and on_cpu.mixed_precision == mixed_precision
    cpu_decision = on_cpu.decision_function(X)
    # The GPU runs its convolutions in TF32 (or bf16); the CPU in float32 (or its
    # own bf16): the same model up to that rounding (measured on an H100: at most 0.0015
    # in TF32), so the verdicts differ only for pairs that close to the threshold.
    tolerance = 0.05 if model.net_.mixed_precision else 0.01
    np.testing.assert_allclose(cpu_decision, on_gpu, atol=tolerance)
    close_call = np.abs(on_gpu) <= np.abs(cpu_decision - on_gpu)
    agree = on_cpu.predict(X) == model.predict(X)
    assert agree[~close_call].all() and agree.mean() >= 0.9


@cuda
def test_gpu_fit_survives_joblib_and_clone(tmp_path, signature_pairs):
    model = _fit(signature_pairs, device="cuda")
    X = signature_pairs["X_test"]
    joblib.dump(model, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").decision_function(X),
                                  model.decision_function(X))
    assert clone(model).get_params()["device"] == "cuda"
