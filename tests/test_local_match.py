"""Local matching (``local_weight``): feature maps compared position by position."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch.nn import functional as F

import skseg
from skseg import SiameseVerifier
from skseg.verifier import AUTO_LOCAL_WEIGHT

from .conftest import TinyBackbone
from skseg.nn import CompactNet, SigNet
from skseg.nn.siamese import SiameseModule, all_pairs_shifted_similarity, shifted_similarity


def _unit_maps(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=generator), dim=1)


def test_shifted_similarity_is_each_positions_best_match_within_reach():
    a, b = _unit_maps(2, 4, 3, 5, seed=0), _unit_maps(2, 4, 3, 5, seed=1)
    best = shifted_similarity(a, b, reach=1)
    for n in range(2):
        for y in range(3):
            for x in range(5):
                # Positions off b's map count as similarity 0.
                candidates = [0.0 if not (0 <= y + dy < 3 and 0 <= x + dx < 5)
                              else float(a[n, :, y, x] @ b[n, :, y + dy, x + dx])
                              for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
                assert float(best[n, y, x]) == pytest.approx(max(candidates), abs=1e-6)
    # Reach 0 compares each position with the same position only.
    torch.testing.assert_close(shifted_similarity(a, b, reach=0), (a * b).sum(dim=1))
    # A map moved by one position still finds itself wherever it has a source.
    moved = torch.roll(a, shifts=1, dims=3)
    assert torch.allclose(shifted_similarity(a, moved, reach=1)[..., :-1], torch.ones(2, 3, 4))


@pytest.mark.parametrize("reach", [0, 1, 2])
def test_all_pairs_form_equals_the_pair_by_pair_form(reach):
    maps = _unit_maps(5, 3, 4, 6)
    best = all_pairs_shifted_similarity(maps, reach)
    assert best.shape == (4 * 6, 5, 5)
    for i in range(5):
        for j in range(5):
            expected = shifted_similarity(maps[i : i + 1], maps[j : j + 1], reach).flatten()
            torch.testing.assert_close(best[:, i, j], expected, atol=1e-6, rtol=1e-5)


def _local_module(**kwargs):
    torch.manual_seed(0)
    return SiameseModule("compact", 16, local_weight=0.25, local_channels=8, **kwargs)


def test_local_embedding_is_the_global_one_then_the_unit_local_map():
    module = _local_module().eval()
    with torch.no_grad():
        e = module(torch.randint(0, 256, (4, 64, 96), dtype=torch.uint8))
    channels, height, width = module.local_shape
    assert channels == 8 and e.shape == (4, 16 + 8 * height * width)
    torch.testing.assert_close(e[:, :16].norm(dim=1), torch.ones(4))
    local = e[:, 16:].reshape(4, channels, height, width)
    torch.testing.assert_close(local.norm(dim=1), torch.ones(4, height, width))
    # The global part is the plain module's embedding with the same backbone weights.
    plain = SiameseModule("compact", 16).eval()
    plain.backbone.load_state_dict(module.backbone.state_dict())
    with torch.no_grad():
        images = torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8)
        torch.testing.assert_close(module(images)[:, :16], plain(images))


def test_pair_distance_mixes_the_global_and_the_local_distance():
    module = _local_module().eval()
    with torch.no_grad():
        e = module(torch.randint(0, 256, (4, 64, 96), dtype=torch.uint8))
        local = e[:, 16:].reshape(4, *module.local_shape)
        a, b = local[:2], local[2:]
        similarity = (shifted_similarity(a, b, 1) + shifted_similarity(b, a, 1)) / 2
        expected = (0.75 * torch.linalg.norm(e[:2, :16] - e[2:, :16], dim=1)
                    + 0.25 * torch.sqrt(2 - 2 * similarity).mean(dim=(1, 2)))
        torch.testing.assert_close(module.pair_distance(e[:2], e[2:]), expected, atol=1e-5,
                                   rtol=1e-4)
        # An image is at distance 0 from itself, and the distance is symmetric.
        assert module.pair_distance(e, e).abs().max() < 1e-4
        torch.testing.assert_close(module.pair_distance(e[:2], e[2:]),
                                   module.pair_distance(e[2:], e[:2]))


def test_training_form_equals_the_pair_by_pair_form_with_its_gradients():
    module = _local_module().train()
    images = torch.randint(0, 256, (6, 64, 96), dtype=torch.uint8)
    pairs = torch.tensor([[0, 1], [1, 0], [2, 5], [3, 4], [5, 2], [0, 3]])
    e = module(images)

    def gradients(distance):
        return torch.autograd.grad(distance.sum(), list(module.parameters()), retain_graph=True)

    fast = module.batch_pair_distance(e, pairs)
    slow = module.pair_distance(e[pairs[:, 0]], e[pairs[:, 1]])
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)
    for g_fast, g_slow in zip(gradients(fast), gradients(slow)):
        torch.testing.assert_close(g_fast, g_slow, atol=1e-4, rtol=1e-3)


@pytest.mark.filterwarnings("ignore:Too few pairs")
def test_inference_in_chunks_equals_the_module():
    clf = SiameseVerifier(local_weight=0.5, max_epochs=1, batch_size=16, random_state=0)
    X = np.random.default_rng(0).integers(0, 256, (12, 2, 64, 96), dtype=np.uint8)
    clf.fit(X, np.arange(12) % 2)
    embeddings = clf.net_.embed(X.reshape(-1, 64, 96))
    pairs = np.stack([np.arange(0, 24, 2), np.arange(1, 24, 2)], axis=1)
    with torch.no_grad():
        expected = clf.net_.module_.pair_distance(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])
    # Chunks of 5 pairs, then the default chunking.
    np.testing.assert_allclose(clf.net_.pair_distances(embeddings, pairs, batch_size=5),
                               expected.double().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.net_.pair_distances(embeddings, pairs),
                               expected.double().numpy(), rtol=1e-5, atol=1e-6)


def test_verifier_with_local_matching_fits_saves_and_loads(signature_pairs, tmp_path):
    d = signature_pairs
    clf = SiameseVerifier(local_weight=0.5, max_epochs=2, random_state=0)
    clf.fit(d["X_train"], d["y_train"])
    assert clf.net_.module_.local is not None
    channels, height, width = clf.net_.module_.local_shape
    assert clf.embed(d["X_test"][:3, 0]).shape == (3, 128 + channels * height * width)
    decision = clf.decision_function(d["X_test"])
    assert np.isfinite(decision).all() and np.isfinite(clf.validation_eer_)
    # Settings travel with the model: clone, joblib and the safe format.
    assert clone(clf).get_params()["local_weight"] == 0.5
    joblib.dump(clf, tmp_path / "m.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "m.joblib").decision_function(d["X_test"]),
                               decision, rtol=1e-5, atol=1e-6)
    skseg.save(clf, tmp_path / "m.safetensors")
    loaded = skseg.load(tmp_path / "m.safetensors")
    np.testing.assert_allclose(loaded.decision_function(d["X_test"]), decision, rtol=1e-5,
                               atol=1e-6)


def test_local_matching_is_off_at_weight_zero():
    module = SiameseModule("compact", 16, local_weight=0.0)
    assert module.local is None
    assert module(torch.zeros(2, 64, 96, dtype=torch.uint8)).shape == (2, 16)


@pytest.mark.filterwarnings("ignore:Too few pairs")
def test_auto_weight_applies_where_local_matching_can():
    X = np.random.default_rng(0).integers(0, 256, (8, 2, 64, 96), dtype=np.uint8)
    y = np.arange(8) % 2
    default = SiameseVerifier(max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    assert default.local_weight == "auto" and default.local_weight_ == AUTO_LOCAL_WEIGHT == 0.5
    assert default.net_.module_.local is not None
    # No distance to mix into (the bce head), or no feature map (a custom backbone): 0.
    bce = SiameseVerifier(loss="bce", max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    custom = SiameseVerifier(backbone=TinyBackbone, max_epochs=1, random_state=0).fit(X, y)
    for clf in (bce, custom):
        assert clf.local_weight_ == 0 and clf.net_.module_.local is None
    plain = SiameseVerifier(local_weight=0, max_epochs=1, random_state=0).fit(X, y)
    assert plain.local_weight_ == 0


def test_files_from_before_local_matching_load_without_it(signature_pairs, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    d = signature_pairs
    clf = SiameseVerifier(local_weight=0, max_epochs=1, random_state=0)
    clf.fit(d["X_train"], d["y_train"])
    skseg.save(clf, tmp_path / "new.safetensors")
    # The same file as a version without the parameter wrote it.
    with safe_open(str(tmp_path / "new.safetensors"), "pt") as f:
        header = json.loads(f.metadata()["skseg"])
        state = {key: f.get_tensor(key) for key in f.keys()}
    header["verifier"]["params"].pop("local_weight")
    save_file(state, str(tmp_path / "old.safetensors"), metadata={"skseg": json.dumps(header)})
    loaded = skseg.load(tmp_path / "old.safetensors")
    assert loaded.local_weight == 0 and loaded.local_weight_ == 0
    np.testing.assert_allclose(loaded.decision_function(d["X_test"]),
                               clf.decision_function(d["X_test"]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backbone, channels", [(CompactNet, 256), (SigNet, 256)])
def test_builtin_backbones_give_their_feature_map(backbone, channels):
    net = backbone(embedding_dim=8).eval()
    x = torch.rand(1, 1, 155, 220)
    with torch.no_grad():
        feature_map, embedding = net.forward_features(x)
        torch.testing.assert_close(embedding, net(x))
    assert feature_map.shape[1] == net.feature_channels == channels
    assert feature_map.shape[2] >= 3 and feature_map.shape[3] >= 4


@pytest.mark.filterwarnings("ignore:Too few pairs")
def test_bad_local_settings_are_named():
    X = np.random.default_rng(0).integers(0, 256, (8, 2, 64, 96), dtype=np.uint8)
    y = np.arange(8) % 2
    with pytest.raises(ValueError, match="local_weight"):
        SiameseVerifier(local_weight=1.5).fit(X, y)
    # An explicit weight where local matching cannot apply is refused, with the way out.
    with pytest.raises(ValueError, match="local_weight=0.5 .*loss='bce'.*local_weight=0"):
        SiameseVerifier(local_weight=0.5, loss="bce", max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="TinyBackbone has no forward_features"):
        SiameseVerifier(backbone=TinyBackbone, local_weight=0.5, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="local_reach=-1"):
        SiameseVerifier(local_weight=0.5, module__local_reach=-1, max_epochs=1).fit(X, y)
    with pytest.raises(RuntimeError, match="once an image has been embedded"):
        _local_module().pair_distance(torch.zeros(2, 40), torch.zeros(2, 40))
