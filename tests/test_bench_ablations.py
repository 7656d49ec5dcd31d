"""bench/ablations.py on tiny synthetic data: each setting trains what it says."""

import json
from functools import partial

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures
from skseg._pairs import as_bank
from skseg.datasets._pairs import _items_of
from skseg.metrics import equal_error_rate
from skseg.nn.batching import PairBatches
from skseg.nn.net import freezer

from .conftest import assert_frozen, assert_same_weights, bench_script

TINY = {"max_epochs": 1, "batch_size": 16}
#: The settings that work on the global embedding alone run without local matching.
GLOBAL = {**TINY, "local_weight": 0}


@pytest.fixture(scope="module")
def ablations():
    with bench_script("ablations") as module:
        yield module


@pytest.fixture(scope="module")
def data():
    return make_synthetic_signatures(n_writers=6, n_genuine=4, n_forgeries=4, random_state=0)


PREP = SignaturePreprocessor(canvas_size=(32, 48))


def test_seeds_and_their_ensemble(ablations, data):
    out = ablations.run(data, "defaults", seeds=(0, 1), n_splits=3, verifier_params=TINY,
                        preprocessor=PREP)
    assert [r["seed"] for r in out["runs"]] == [0, 1]
    for r in out["runs"]:  # the verifier's own choices on its validation writers
        assert 0 <= r["validation_eer"] <= 1 and r["size_weight"] >= 0
    for figures in [*out["runs"], out["ensemble"], out["ensemble_unscaled"]]:
        assert 0 <= figures["eer_skilled"] <= 1 and 0 <= figures["eer_random"] <= 1
    one = ablations.run(data, "defaults", seeds=(0,), n_splits=3, verifier_params=TINY,
                        preprocessor=PREP)
    assert "ensemble" not in one
    assert one["runs"][0]["eer_skilled"] == pytest.approx(out["runs"][0]["eer_skilled"])


def test_ensemble_is_the_mean_decision(ablations):
    y = np.array([1, 1, 0, 0])
    kind = np.array(["genuine", "genuine", "skilled", "random"])
    # Each model ranks one forgery above one genuine pair; their mean ranks all right.
    a = {"y": y, "kind": kind, "decision": np.array([1.0, -1.0, 0.0, -2.0])}
    b = {"y": y, "kind": kind, "decision": np.array([-1.0, 1.0, -2.0, 0.0])}
    assert ablations.ensemble_eers([a, b]) == {"eer_skilled": 0.0, "eer_random": 0.0}
    other = dict(b, y=np.array([1, 0, 0, 0]))
    with pytest.raises(RuntimeError, match="different test pairs"):
        ablations.ensemble_eers([a, other])


def test_ensemble_standardises_each_models_scale(ablations):
    y = np.array([1, 1, 0, 0])
    kind = np.array(["genuine", "genuine", "skilled", "skilled"])
    # a ranks pair 1 below both forgeries, b ranks pair 0 below one of them; b's
    # values are 100 times larger, so its ranking alone decides the unscaled mean.
    a = {"y": y, "kind": kind, "decision": np.array([3.0, -2.0, 0.0, -1.0])}
    b = {"y": y, "kind": kind, "decision": 100 * np.array([-1.0, 3.0, -2.0, 0.0])}
    unscaled = ablations.mean_decision([a["decision"], b["decision"]], standardise=False)
    np.testing.assert_allclose(unscaled, (a["decision"] + b["decision"]) / 2)
    scaled = ablations.mean_decision([a["decision"], b["decision"]])
    np.testing.assert_allclose(scaled, (a["decision"] / a["decision"].std()
                                        + b["decision"] / b["decision"].std()) / 2)
    assert ablations.ensemble_eers([a, b], standardise=False)["eer_skilled"] == pytest.approx(
        ablations.ensemble_eers([b])["eer_skilled"])
    assert ablations.ensemble_eers([a, b])["eer_skilled"] == 0.0


def test_weight_averaging_averages_the_epochs(ablations, data):
    snapshots = []

    class Snapshot(Callback):  # runs before the averaging callback, which follows it
        def on_epoch_end(self, net, **kwargs):
            snapshots.append({k: v.detach().clone() for k, v in net.module_.named_parameters()})

    pairs, y, _ = make_pairs(data, random_state=0)
    X = PREP.transform(pairs)
    clf = SiameseVerifier(max_epochs=3, batch_size=16, random_state=0,
                          callbacks=[Snapshot(), ablations.WeightAveraging(start=2)]).fit(X, y)
    for name, value in clf.net_.module_.named_parameters():
        expected = (snapshots[1][name] + snapshots[2][name]) / 2
        torch.testing.assert_close(value, expected)
    # BatchNorm statistics were recomputed for the averaged weights.
    norm = next(m for m in clf.net_.module_.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert norm.momentum == 0.1 and int(norm.num_batches_tracked) > 0


def test_mirrored_writers_are_new_writers_of_the_training_fold(ablations, data):
    extra = ablations.mirrored_training_writers(data, fold=0, n_splits=3)
    items, writer, genuine = _items_of(data)
    assert len(extra.images) == 4 * 8  # 4 of the 6 writers train in each of 3 folds
    assert not set(extra.writer) & set(writer)
    first = next(i for i, w in enumerate(writer) if f"mirrored {w}" == extra.writer[0])
    np.testing.assert_array_equal(np.asarray(extra.images[0]), np.asarray(items[first])[:, ::-1])
    out = ablations.run(data, "mirrored-writers", n_splits=3, verifier_params=TINY,
                        preprocessor=PREP)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1


def test_writer_pieces_mix_more_writers_per_batch(ablations):
    from skseg.nn.batching import PairDataset

    # 6 writers of 8 genuine images and 8 forgeries; SigNet-like labelled pairs.
    pairs, target = [], []
    for w in range(6):
        genuine, forged = np.arange(16 * w, 16 * w + 8), np.arange(16 * w + 8, 16 * w + 16)
        for i in range(8):
            pairs += [(genuine[i], g) for g in genuine[i + 1:]] + [(genuine[i], f) for f in forged]
            target += [1.0] * (7 - i) + [0.0] * 8
    dataset = PairDataset(torch.zeros(96, 2, 2, dtype=torch.uint8), np.array(pairs),
                          np.array(target, dtype=np.float32))
    pieces = ablations.WriterPieces(dataset, 32, piece_size=4, shuffle=True, random_state=0,
                                    implied_pairs=True)
    writer_of = np.arange(96) // 16
    plan = pieces.plan_epoch()
    assert {len(images) for images, _, _ in plan} == {32}  # 24 pieces of 4 in batches of 32
    for images, batch_pairs, _ in plan:
        # Whole pieces of 4: a writer has 4, 8, ... images in a batch.
        assert set(np.bincount(writer_of[images])) <= {0, 4, 8, 12, 16}
        assert np.isin(batch_pairs, images).all()  # every pair trained lies inside its batch
    whole = PairBatches(dataset, 32, shuffle=True, random_state=0, implied_pairs=True)
    assert max(len(set(writer_of[images])) for images, _, _ in whole.plan_epoch()) == 2
    assert np.mean([len(set(writer_of[images])) for images, _, _ in plan]) > 4


def test_writer_pieces_run(ablations, data):
    out = ablations.run(data, "writer-pieces", n_splits=3, piece_size=4, verifier_params=TINY,
                        preprocessor=PREP)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1


def test_elastic_displacement_is_in_pixels(ablations):
    torch.manual_seed(0)
    none = ablations.elastic_displacement((3, 1, 20, 40), amplitude=0.0, spacing=8)
    assert none.shape == (3, 20, 40, 2) and not none.any()
    field = ablations.elastic_displacement((200, 1, 20, 40), amplitude=2.0, spacing=8)
    # grid_sample's units: 2 / width per pixel along x, 2 / height along y; the
    # control points' offsets (the corners are control points) keep their 2-pixel spread.
    pixels = field * torch.tensor([40 / 2, 20 / 2])
    knots = pixels[:, [0, -1]][:, :, [0, -1]].reshape(-1, 2)
    assert knots.std(dim=0).tolist() == pytest.approx([2.0, 2.0], rel=0.1)
    # Smooth: neighbouring pixels move alike (independent offsets would differ by
    # about 1.4 times their mean size; 8 pixels between control points give 0.2).
    assert (pixels[:, :, 1:] - pixels[:, :, :-1]).abs().mean() < 0.35 * pixels.abs().mean()
    assert not torch.equal(field[0], field[1])  # drawn per image


def test_elastic_run_trains_with_the_elastic_module(ablations, data):
    verifier = ablations.elastic_verifier(amplitude=2.0, spacing=8)
    pairs, y, _ = make_pairs(data, random_state=0)
    clf = verifier(random_state=0, **TINY).fit(PREP.transform(pairs), y)
    module = clf.net_.module_
    assert type(module).__name__ == "ElasticModule" and module.augment
    x = torch.rand(4, 1, 32, 48)
    torch.manual_seed(0)
    warped = module.augment_batch(x)
    assert warped.shape == x.shape and not torch.allclose(warped, x)
    out = ablations.run(data, "elastic", n_splits=3, verifier_params=TINY, preprocessor=PREP)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1


def test_image_scale_divides_the_distance_by_the_pairs_learned_scales(ablations, data):
    verifier = ablations.image_scale_verifier()
    pairs, y, _ = make_pairs(data, random_state=0)
    clf = verifier(random_state=0, **GLOBAL).fit(PREP.transform(pairs), y)
    module = clf.net_.module_.eval()
    with torch.no_grad():
        e = module(torch.randint(0, 256, (4, 32, 48), dtype=torch.uint8))
        # The embedding (all but the last output) is unit length; the last is the log-scale.
        torch.testing.assert_close(e[:, :-1].norm(dim=1), torch.ones(4))
        assert (e[:, -1].abs() <= 3).all()
        plain = torch.linalg.norm(e[:2, :-1] - e[2:, :-1], dim=1)
        expected = plain * torch.exp(-(e[:2, -1] + e[2:, -1]) / 2)
        torch.testing.assert_close(module.pair_distance(e[:2], e[2:]), expected, atol=1e-6,
                                   rtol=1e-5)
    out = ablations.run(data, "image-scale", n_splits=3, verifier_params=TINY, preprocessor=PREP)
    run = out["runs"][0]
    assert 0 <= run["eer_skilled"] <= 1 and 0 <= run["eer_skilled_writer"] <= 1


def test_fine_local_matches_the_third_block_map(ablations, data):
    out = ablations.run(data, "fine-local", n_splits=3, verifier_params=TINY, preprocessor=PREP)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1
    pairs, y, _ = make_pairs(data, random_state=0)
    fine = SiameseVerifier(random_state=0, backbone=ablations.FineCompactNet, **TINY)
    plain = SiameseVerifier(random_state=0, **TINY)
    shapes = [clf.fit(PREP.transform(pairs), y).net_.module_.local_shape for clf in (fine, plain)]
    # 32 x 48 canvases: the third block's map is 4 x 6, twice the last one's 2 x 3.
    assert shapes == [(32, 4, 6), (32, 2, 3)]
    assert fine.net_.module_.local.in_channels == 128
    assert fine.local_weight_ == plain.local_weight_ == 0.5


def test_cosine_lr_falls_to_zero_over_the_epochs(ablations, data, monkeypatch):
    rates = []

    class RecordRate(Callback):
        def on_epoch_begin(self, net, **kwargs):
            rates.append(net.optimizer_.param_groups[0]["lr"])

    fit = SiameseVerifier.fit

    def fit_recording(self, X, y, **kwargs):
        self.set_params(callbacks=[*self.callbacks, RecordRate()])
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(ablations.SiameseVerifier, "fit", fit_recording)
    params = {**TINY, "max_epochs": 4, "lr": 1e-3}
    out = ablations.run(data, "cosine-lr", n_splits=3, verifier_params=params, preprocessor=PREP)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1
    # Epochs 1 to 4 start at lr * (1 + cos(pi * k / 4)) / 2, k = 0..3.
    np.testing.assert_allclose(rates, [1e-3, 8.536e-4, 5e-4, 1.464e-4], rtol=1e-3)


def test_score_norm_standardises_by_each_images_cohort_distances(ablations):
    to_cohort = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 9.0], [0.0, 1.0, 8.0]])
    pairs = np.array([[0, 1], [2, 0]])
    distances = torch.tensor([3.0, 1.0])
    z, (mean, sd) = ablations.score_norm(distances, pairs, to_cohort)
    # image means 2, 5, 3 and SDs 1, sqrt(13), sqrt(19)
    expected = [((3 - 2) / 1 + (3 - 5) / 13**0.5) / 2, ((1 - 3) / 19**0.5 + (1 - 2) / 1) / 2]
    torch.testing.assert_close(z, torch.tensor(expected))
    assert mean == pytest.approx(10 / 3)
    assert sd == pytest.approx((1 + 13**0.5 + 19**0.5) / 3)
    # z-norm: the reference (column 0) alone
    z, _ = ablations.score_norm(distances, pairs, to_cohort, sides=(0,))
    torch.testing.assert_close(z, torch.tensor([(3 - 2) / 1, (1 - 3) / 19**0.5]))
    # With the 2 nearest: means 1.5, 3, 0.5, SDs all sqrt(0.5), 2 sqrt(2), sqrt(0.5)
    z, _ = ablations.score_norm(distances, pairs, to_cohort, nearest=2)
    half = 0.5**0.5
    expected = [((3 - 1.5) / half + (3 - 3) / (2 * 2**0.5)) / 2,
                ((1 - 0.5) / half + (1 - 1.5) / half) / 2]
    torch.testing.assert_close(z, torch.tensor(expected))


def test_cohort_norm_scores_the_defaults_model_each_way(ablations, data):
    out = ablations.run(data, "cohort-norm", n_splits=3, verifier_params=TINY,
                        preprocessor=PREP)
    plain = ablations.run(data, "defaults", n_splits=3, verifier_params=TINY,
                          preprocessor=PREP)
    run, defaults = out["runs"][0], plain["runs"][0]
    norms = run["norms"]
    assert list(norms) == ["raw", *ablations.COHORT_NORMS]
    # "raw" is the defaults' model and figures: the same training, split and size weight.
    for name in ("eer_skilled", "eer_random", "validation_eer"):
        assert norms["raw"][name] == pytest.approx(defaults[name])
    # The benchmark's own figures are the first normalisation's.
    first = norms[next(iter(ablations.COHORT_NORMS))]
    assert run["eer_skilled"] == pytest.approx(first["eer_skilled"])
    assert run["validation_eer"] == pytest.approx(first["validation_eer"])
    for figures in norms.values():
        assert 0 <= figures["eer_skilled"] <= 1 and 0 <= figures["validation_eer"] <= 1


def test_cohort_norm_normalises_the_full_distance(ablations, data):
    pairs, y, _ = make_pairs(data, random_state=0)
    X = PREP.transform(pairs)
    params = {**TINY, "size_weight": 1.0, "stroke_weight": 1.0, "random_state": 0}  # both terms
    records = {}
    verifier = ablations.cohort_norm_verifier(records, cohort_size=5)(**params).fit(X, y)
    plain = SiameseVerifier(**params).fit(X, y)
    assert plain.stroke_weight_ == 1.0 and plain.size_weight_ == 1.0
    some = X[:9]
    verifier.decision_function(some)
    # "raw" is the defaults' full distance: network, size and stroke terms.
    np.testing.assert_allclose(records["test"]["raw"],
                               plain.decision_function(some) - plain.threshold_, rtol=1e-6)
    # Each image's distance to each of the 5 cohort images is that same full distance.
    _, to_cohort, rows = verifier._raw_and_cohort(some)
    images, _ = ablations._images_of(some)
    cohort = verifier.cohort_
    assert to_cohort.shape == (len(images.images), 5) and len(cohort.images) == 5
    np.testing.assert_array_equal(images.images[rows], np.asarray(some))
    for i, j in [(0, 0), (2, 4), (len(images.images) - 1, 1)]:
        one = PairedCanvases(np.stack([images.images[i], cohort.images[j]]), [[0, 1]],
                             np.stack([images.sizes[i], cohort.sizes[j]]),
                             np.stack([images.strokes[i], cohort.strokes[j]]))
        assert float(to_cohort[i, j]) == pytest.approx(
            float(plain.threshold_ - plain.decision_function(one)[0]), rel=1e-6)


def test_cohort_norm_needs_paired_canvases(ablations, data):
    pairs, _, _ = make_pairs(data, random_state=0)
    with pytest.raises(TypeError, match="PairedCanvases.*got ndarray"):
        ablations._images_of(np.asarray(PREP.transform(pairs[:3])))


def test_cohort_norm_prints_each_normalisation(ablations, data, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(ablations, "load_signatures", lambda path, layout: data)
    monkeypatch.setattr(ablations, "run", partial(ablations.run, n_splits=3, preprocessor=PREP))
    ablations.main([str(tmp_path), "--setting", "cohort-norm", "--params", json.dumps(TINY),
                    "--out", str(tmp_path / "out.json")])
    lines = capsys.readouterr().out.splitlines()
    for name in ["raw", *ablations.COHORT_NORMS]:
        assert any(line.strip().startswith(f"{name}: skilled EER") for line in lines)
    saved = json.loads((tmp_path / "out.json").read_text())
    assert list(saved["runs"][0]["norms"]) == ["raw", *ablations.COHORT_NORMS]


def test_shared_split_holds_out_seed_0s_writers_for_every_seed(ablations, data):
    pairs, y, _ = make_pairs(data, random_state=0)
    X = PREP.transform(pairs)
    scores = []
    shared = ablations.shared_split_verifier(scores)(random_state=1, **TINY).fit(X, y)
    bank, index = as_bank(X)
    target = (y == shared.classes_[1]).astype(int)
    seed_0 = ablations.fit_split(SiameseVerifier(random_state=0), index, target, len(bank))
    seed_1 = ablations.fit_split(SiameseVerifier(random_state=1), index, target, len(bank))
    rows = shared._validation_split(index, target, len(bank), None)
    assert np.array_equal(rows[1], seed_0[1]) and not np.array_equal(rows[1], seed_1[1])
    # The recorded validation pairs are the ones fit chose its threshold on.
    assert np.array_equal(scores[0]["y"], target[seed_0[1]])
    eer, _ = equal_error_rate(scores[0]["y"], scores[0]["decision"])
    assert eer == pytest.approx(shared.validation_eer_)


def test_shared_split_ensemble_has_a_validation_eer(ablations, data):
    out = ablations.run(data, "shared-split", seeds=(0, 1), n_splits=3, verifier_params=TINY,
                        preprocessor=PREP)
    plain = ablations.run(data, "defaults", n_splits=3, verifier_params=TINY,
                          preprocessor=PREP)
    # Seed 0 holds out its own writers: the defaults' run to the digit.
    assert out["runs"][0]["eer_skilled"] == pytest.approx(plain["runs"][0]["eer_skilled"])
    assert out["runs"][0]["validation_eer"] == pytest.approx(plain["runs"][0]["validation_eer"])
    assert 0 <= out["ensemble"]["validation_eer"] <= 1
    assert 0 <= out["ensemble_unscaled"]["validation_eer"] <= 1


def test_tta_averages_fixed_views_outside_training_only(ablations, data):
    pairs, y, _ = make_pairs(data, random_state=0)
    X = PREP.transform(pairs)
    plain = SiameseVerifier(random_state=0, **GLOBAL).fit(X, y)
    one = ablations.tta_verifier(1)(random_state=0, **GLOBAL).fit(X, y)
    four = ablations.tta_verifier(4)(random_state=0, **GLOBAL).fit(X, y)
    images = X.images[:5]
    # Training is untouched: the same weights, and one view is the plain embedding.
    for a, b in zip(plain.net_.module_.parameters(), four.net_.module_.parameters()):
        torch.testing.assert_close(a, b)
    np.testing.assert_allclose(one.embed(images), plain.embed(images), rtol=1e-5, atol=1e-6)
    # Four views: other embeddings, unit length, the same in every call; one view
    # only for the validation loss while training.
    assert four.net_.module_.views == 4
    valid_loss = [clf.net_.history[-1, "valid_loss"] for clf in (four, plain)]
    assert valid_loss[0] == pytest.approx(valid_loss[1])
    averaged = four.embed(images)
    assert not np.allclose(averaged, plain.embed(images), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(averaged, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(averaged, four.embed(images))
    # The plain decisions it records are those of one view, and views are restored.
    plain_decisions = []
    recorder = ablations.tta_verifier(4, plain_decisions)(random_state=0, **GLOBAL).fit(X, y)
    averaged_decision = recorder.decision_function(X)
    np.testing.assert_allclose(plain_decisions[0], one.decision_function(X) - one.threshold_
                               + recorder.threshold_, rtol=1e-5, atol=1e-5)
    # (rtol 1e-6 on a CPU; a GPU picks convolution kernels by batch size: 6e-5 there)
    np.testing.assert_allclose(averaged_decision, four.decision_function(X), rtol=1e-4,
                               atol=1e-7)
    out = ablations.run(data, "tta", n_splits=3, tta_views=2, verifier_params=TINY,
                        preprocessor=PREP)
    run = out["runs"][0]
    assert 0 <= run["eer_skilled"] <= 1 and 0 <= run["one_view"]["eer_skilled"] <= 1


def test_writer_classes_of_a_pair_dataset(ablations):
    from skseg.nn import PairDataset

    # Writer A: images 0, 1 genuine, 2 a forgery of A; writer B: 3, 4 genuine,
    # 5 a forgery of B; image 6 in no pair.
    pairs = np.array([[0, 1], [0, 2], [3, 4], [4, 5], [1, 3]])
    target = np.array([1, 0, 1, 0, 0], dtype=np.float32)
    batches = ablations.WriterClassBatches(PairDataset(torch.zeros(7, 2, 2), pairs, target), 4)
    classes, n_classes = batches.image_class, batches.n_classes
    assert n_classes == 4 and classes[6] == -1
    assert classes[0] == classes[1] == classes[2] - 1 and classes[0] % 2 == 0
    assert classes[3] == classes[4] == classes[5] - 1 and classes[3] % 2 == 0
    assert classes[0] != classes[3]


def test_writer_classes_run_trains_class_vectors(ablations, data):
    pairs, y, _ = make_pairs(data, random_state=0)
    X = PREP.transform(pairs)
    seen = []

    class Spy(Callback):
        def on_train_begin(self, net, **kwargs):
            seen.append(net.criterion_.class_vectors.detach().clone())

        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            if training:
                seen.append(batch[1])

    verifier = ablations.writer_classes_verifier(weight=1.0, scale=16.0, class_margin=0.2)
    clf = verifier(random_state=0, callbacks=[Spy()], **GLOBAL).fit(X, y)
    vectors = clf.net_.criterion_.class_vectors
    # Two classes per training writer (4 of 6 writers minus the validation writer).
    assert vectors.shape[1] == 128 and vectors.shape[0] in (6, 8)
    assert not torch.allclose(seen[0], vectors.detach())  # the optimizer trained them
    trained = [p for group in clf.net_.optimizer_.param_groups for p in group["params"]]
    assert any(p is vectors for p in trained)
    for y_batch in seen[1:]:
        # The labelled pairs agree with the classes: a genuine pair shares its
        # writer's even class; a skilled forgery is the odd class next to it.
        cls, first = y_batch["image_class"], y_batch["pairs"]
        a, b = cls[first[:, 0]], cls[first[:, 1]]
        genuine = y_batch["target"] > 0.5
        assert torch.equal(a[genuine], b[genuine]) and bool((a[genuine] % 2 == 0).all())
        skilled = ~genuine & (a // 2 == b // 2)
        assert bool((a[skilled] != b[skilled]).all())
    out = ablations.run(data, "writer-classes", n_splits=3, verifier_params=TINY,
                        preprocessor=PREP)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1


def test_pretrain_trains_on_the_other_corpus_once_per_seed(ablations, data, tmp_path,
                                                           monkeypatch):
    other = make_synthetic_signatures(n_writers=4, n_genuine=4, n_forgeries=4, random_state=1)
    model = ablations.pretrain(data, other, seed=3, params=TINY, preprocessor=PREP,
                               cache=tmp_path)
    assert model.random_state == 3 and model.validation_fraction == 0
    assert (tmp_path / "pretrained_seed3.safetensors").exists()

    def no_training(self, X, y):
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(SiameseVerifier, "fit", no_training)
    reused = ablations.pretrain(data, other, seed=3, params=TINY, preprocessor=PREP,
                                cache=tmp_path)
    assert_same_weights(reused, model)


def test_pretrained_verifier_fine_tunes_from_the_pretrained_weights(ablations, data):
    other = make_synthetic_signatures(n_writers=4, n_genuine=4, n_forgeries=4, random_state=1)
    model = ablations.pretrain(data, other, seed=0, params=TINY, preprocessor=PREP)
    pairs, y, _ = make_pairs(data, random_state=0)
    X = PREP.transform(pairs)
    # A learning rate too small to move a weight: the fold's fit keeps the pretrained ones.
    tuned = ablations.pretrained_verifier(model)(warm_start=True, lr=1e-12, **TINY)
    tuned.fit(X, y)
    assert_same_weights(tuned, model)
    out = ablations.run(data, "pretrained", n_splits=3, verifier_params=TINY, preprocessor=PREP,
                        pretrain_data=other, pretrain_params=TINY)
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1


def test_freeze_keeps_the_matching_weights_pretrained(ablations, data):
    other = make_synthetic_signatures(n_writers=4, n_genuine=4, n_forgeries=4, random_state=1)
    model = ablations.pretrain(data, other, seed=0, params=TINY, preprocessor=PREP)
    pairs, y, _ = make_pairs(data, random_state=0)
    frozen = "backbone.features.*"
    tuned = ablations.pretrained_verifier(model)(
        warm_start=True, callbacks=[freezer(model.net_, [frozen])], **TINY)
    tuned.fit(PREP.transform(pairs), y)
    assert_frozen(tuned, model, frozen)
    out = ablations.run(data, "pretrained", n_splits=3, verifier_params=TINY, preprocessor=PREP,
                        pretrain_data=other, pretrain_params=TINY, freeze=[frozen])
    assert 0 <= out["runs"][0]["eer_skilled"] <= 1
    with pytest.raises(ValueError, match="'backbone.feature.1.*' matches no parameter"):
        freezer(model.net_, ["backbone.feature.1.*"])


def test_bad_settings_are_named(ablations, data):
    with pytest.raises(ValueError, match="setting='flip'"):
        ablations.run(data, "flip")
    with pytest.raises(ValueError, match="swa_start=0"):
        ablations.run(data, "swa", swa_start=0)
    with pytest.raises(ValueError, match="piece_size=1"):
        ablations.run(data, "writer-pieces", piece_size=1)
    with pytest.raises(ValueError, match="elastic_spacing=0"):
        ablations.run(data, "elastic", elastic_spacing=0)
    with pytest.raises(ValueError, match="tta_views=0"):
        ablations.run(data, "tta", tta_views=0)
    with pytest.raises(ValueError, match="class_scale=0"):
        ablations.run(data, "writer-classes", class_scale=0)
    with pytest.raises(ValueError, match="needs the other corpus"):
        ablations.run(data, "pretrained")
    with pytest.raises(ValueError, match="needs the pretrained setting, not 'defaults'"):
        ablations.run(data, "defaults", freeze=["backbone.*"])
    with pytest.raises(ValueError, match="trains the contrastive loss"):
        ablations.run(data, "writer-classes", verifier_params={"loss": "bce", **TINY},
                      preprocessor=PREP)


@pytest.mark.parametrize("option", ["--params", "--pretrain-params"])
@pytest.mark.parametrize("params, message", [("{margin: 1}", "is not JSON"),
                                             ("[1]", "must be a JSON object")])
def test_bad_params_are_named(ablations, option, params, message, capsys, tmp_path):
    with pytest.raises(SystemExit):
        ablations.main([str(tmp_path), option, params])
    message = f"{option} {message}"
    assert message in capsys.readouterr().err
