"""cross_validate_writers: what each fold trains on and tests on."""

import json

import numpy as np
import pytest
import sklearn
import skorch
import torch
from sklearn.utils import Bunch

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_synthetic_signatures
from skseg.evaluation import (METRICS, _default_pretrain_verifier, _environment,
                              cross_validate_writers, write_report)
from skseg.metrics import writer_equal_error_rates
from skseg.verifier import SIZE_WEIGHTS, STROKE_WEIGHTS

from .conftest import assert_same_weights, module_weights

PREP = SignaturePreprocessor(canvas_size=(32, 48))


class RecordingVerifier(SiameseVerifier):
    """Records the training pairs of each fit (positions in the shared bank)."""

    fits = []
    sizes = []

    def fit(self, X, y):
        RecordingVerifier.fits.append((X.images, X.index.copy(), np.asarray(y)))
        RecordingVerifier.sizes.append(X.sizes)
        return super().fit(X, y)


def test_extra_training_joins_every_fold_and_is_never_tested():
    data = make_synthetic_signatures(n_writers=6, n_genuine=3, n_forgeries=3, random_state=0)
    extra = make_synthetic_signatures(n_writers=3, n_genuine=3, n_forgeries=3, random_state=1)
    n_main, n_extra = len(data.images), len(extra.images)
    RecordingVerifier.fits, RecordingVerifier.sizes = [], []
    plain = cross_validate_writers(data, SiameseVerifier(max_epochs=1, random_state=0),
                                   preprocessor=PREP, n_splits=3, progress=False)
    result = cross_validate_writers(data, RecordingVerifier(max_epochs=1, random_state=0),
                                    preprocessor=PREP, n_splits=3, progress=False,
                                    extra_training=extra)
    assert len(RecordingVerifier.fits) == 3
    extra_pairs = None
    for (bank, index, y), fold, plain_fold in zip(RecordingVerifier.fits, result["folds"],
                                                  plain["folds"]):
        assert len(bank) == n_main + n_extra
        from_extra = (index >= n_main).all(axis=1)
        # No pair mixes the two corpora; the extra pairs are the same in every fold.
        assert ((index >= n_main).any(axis=1) == from_extra).all()
        pairs = {tuple(p) for p in index[from_extra]}
        assert extra_pairs is None or pairs == extra_pairs
        extra_pairs = pairs
        assert fold["n_train_pairs"] == plain_fold["n_train_pairs"] + len(pairs)
        # The main corpus's training pairs never touch a test writer.
        test_writers = set(fold["test_writers"])
        trained = np.unique(index[~from_extra])
        assert not test_writers & set(np.asarray(data.writer).astype(str)[trained].tolist())
        # Test pairs: exactly those of the run without the extra corpus.
        assert fold["n_test_pairs"] == plain_fold["n_test_pairs"]
    assert result["settings"]["extra_training"] == {
        "n_writers": 3, "n_images": n_extra, "n_pairs": len(extra_pairs)}
    assert result["settings"]["n_images"] == n_main
    assert plain["settings"]["extra_training"] is None
    # Every image's ink size reaches the verifier, the extra corpus's included,
    # and each fold reports the size weight its verifier chose.
    expected = np.concatenate([PREP.transform_with_sizes(data.images)[1],
                               PREP.transform_with_sizes(extra.images)[1]])
    for sizes in RecordingVerifier.sizes:
        np.testing.assert_array_equal(sizes, expected)
    assert all(fold["size_weight"] in SIZE_WEIGHTS for fold in result["folds"])
    # ... and its validation writers' EER for each stroke weight, keyed as JSON keeps it.
    for fold in result["folds"]:
        curve = fold["stroke_weight_eers"]
        assert list(curve) == [f"{w:g}" for w in STROKE_WEIGHTS]
        assert curve[f"{fold['stroke_weight']:g}"] == min(curve.values())


@pytest.mark.parametrize("option", ["extra_training", "pretrain_data"])
def test_another_corpus_sharing_a_file_is_refused_before_loading(option):
    data = Bunch(paths=[f"/nowhere/{i}.png" for i in range(8)], writer=[0, 0, 1, 1, 2, 2, 3, 3],
                 genuine=[True, False] * 4)
    # The same file, spelt another way.
    extra = Bunch(paths=["/nowhere/sub/../3.png", "/nowhere/x.png"], writer=[9, 9],
                  genuine=[True, True])
    with pytest.raises(ValueError, match=rf"{option} shares 1 image file.*'/nowhere/3.png'"):
        cross_validate_writers(data, n_splits=2, progress=False, **{option: extra})


# A learning rate too small to move a weight: a fine-tuned fold keeps the pretrained ones.
FROZEN_LR = 1e-12


class WeightRecorder(RecordingVerifier):
    """Also records the trainable weights each fit ends with."""

    weights = []

    def fit(self, X, y):
        super().fit(X, y)
        WeightRecorder.weights.append(module_weights(self))
        return self


def test_pretraining_runs_once_and_every_fold_fine_tunes_from_it(tmp_path):
    data = make_synthetic_signatures(n_writers=6, n_genuine=3, n_forgeries=3, random_state=0)
    other = make_synthetic_signatures(n_writers=3, n_genuine=3, n_forgeries=3, random_state=1)
    RecordingVerifier.fits, RecordingVerifier.sizes, WeightRecorder.weights = [], [], []
    verifier = WeightRecorder(max_epochs=1, lr=FROZEN_LR, random_state=0)
    result = cross_validate_writers(
        data, verifier, preprocessor=PREP, n_splits=3, progress=False, pretrain_data=other,
        pretrain_verifier=WeightRecorder(max_epochs=2, validation_fraction=0, random_state=0,
                                         warm_start=True))
    pretrained = result["pretrained"]
    # One pretraining, on the other corpus's canvases alone, then one fit per fold.
    assert len(RecordingVerifier.fits) == 1 + 3
    np.testing.assert_array_equal(RecordingVerifier.fits[0][0], PREP.transform(other.images))
    assert len(pretrained.net_.history) == 2
    # Each fold starts from the pretrained weights: with a frozen learning rate it
    # ends there; the same folds without pretraining end elsewhere.
    pretrained_weights = WeightRecorder.weights[0]
    for fold_weights in WeightRecorder.weights[1:]:
        assert_same_weights(fold_weights, pretrained_weights)
    assert_same_weights(pretrained, pretrained_weights)  # the pretrained model is untouched
    plain = cross_validate_writers(data, verifier, preprocessor=PREP, n_splits=3,
                                   progress=False)
    for fold_weights in WeightRecorder.weights[4:]:
        with pytest.raises(AssertionError):
            assert_same_weights(fold_weights, pretrained_weights)
    assert result["settings"]["pretraining"]["n_writers"] == 3
    assert result["settings"]["pretraining"]["verifier"]["max_epochs"] == 2
    assert result["settings"]["pretraining"]["verifier"]["warm_start"] is False
    assert plain["settings"]["pretraining"] is None and plain["pretrained"] is None
    # The report leaves the model out; skseg.save is its form.
    report = json.loads(write_report(result, tmp_path / "r.json")[0].read_text())
    assert "pretrained" not in report and report["settings"]["pretraining"]["n_images"] == 18
    # The environment of the device the folds ran on (a GPU where there is one).
    device = report["environment"]["device"]
    assert report["environment"] == json.loads(json.dumps(_environment(device)))


def test_the_environment_names_the_cpu_kernels_and_the_library_versions():
    # Torch's kernels differ by CPU (AVX2, AVX512) and round differently: a figure
    # is comparable only with one measured on the same kind, with the same libraries.
    env = _environment("cpu")
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["libraries"]["scikit-learn"] == sklearn.__version__
    assert env["libraries"]["skorch"] == skorch.__version__
    assert env["libraries"]["numpy"] == np.__version__
    assert set(env["libraries"]) == {"scikit-learn", "skorch", "numpy", "scipy", "torchvision",
                                     "pillow"}
    # numpy's own SIMD dispatch moves the stroke descriptors' last digits.
    assert env["numpy_simd"] == np.show_config(mode="dicts")["SIMD Extensions"]["found"]


def test_the_numpy_simd_record_is_none_where_numpy_cannot_say(monkeypatch):
    def old_show_config():  # numpy before 1.25 took no mode
        print("config")

    monkeypatch.setattr(np, "show_config", old_show_config)
    assert _environment("cpu")["numpy_simd"] is None


def test_the_default_pretraining_is_the_verifier_with_the_default_schedule():
    verifier = SiameseVerifier(lr=3e-4, max_epochs=10, margin=0.7, random_state=5)
    pretrain = _default_pretrain_verifier(verifier)
    defaults = SiameseVerifier()
    assert (pretrain.lr, pretrain.max_epochs) == (defaults.lr, defaults.max_epochs)
    assert pretrain.validation_fraction == 0 and not pretrain.warm_start
    assert (pretrain.margin, pretrain.random_state) == (0.7, 5)
    assert (verifier.lr, verifier.max_epochs) == (3e-4, 10)  # the verifier is left alone


def test_unknown_folds_and_a_lone_pretrain_verifier_are_refused_before_pretraining():
    data = make_synthetic_signatures(n_writers=4, n_genuine=2, n_forgeries=2, random_state=0)
    other = make_synthetic_signatures(n_writers=2, n_genuine=2, n_forgeries=2, random_state=1)
    RecordingVerifier.fits = []
    with pytest.raises(ValueError, match=r"fold\(s\) \[7\] do not exist"):
        cross_validate_writers(data, RecordingVerifier(max_epochs=1), preprocessor=PREP,
                               n_splits=2, folds=[7], progress=False, pretrain_data=other)
    assert RecordingVerifier.fits == []
    with pytest.raises(ValueError, match="pretrain_verifier is trained on pretrain_data, which "
                                         "is None"):
        cross_validate_writers(data, preprocessor=PREP, n_splits=2, progress=False,
                               pretrain_verifier=RecordingVerifier())


@pytest.mark.parametrize("pretrain_params, differs", [
    ({"embedding_dim": 64}, "backbone.embedding"),
    ({"local_weight": 0},
     "local.weight: absent in pretrain_verifier, (32, 256, 1, 1) in verifier"),
    ({"module__local_channels": 16},
     "local.weight: (16, 256, 1, 1) in pretrain_verifier, (32, 256, 1, 1) in verifier"),
])
def test_a_pretrain_verifier_of_another_network_is_refused_before_training(
        pretrain_params, differs):
    data = make_synthetic_signatures(n_writers=4, n_genuine=2, n_forgeries=2, random_state=0)
    other = make_synthetic_signatures(n_writers=2, n_genuine=2, n_forgeries=2, random_state=1)
    RecordingVerifier.fits = []
    with pytest.raises(ValueError, match="pretrain_verifier builds another network") as error:
        cross_validate_writers(data, RecordingVerifier(max_epochs=1), preprocessor=PREP,
                               n_splits=2, progress=False, pretrain_data=other,
                               pretrain_verifier=RecordingVerifier(**pretrain_params))
    assert differs in str(error.value)
    assert RecordingVerifier.fits == []
    # A training setting is no network: the same parameters pass the check.
    result = cross_validate_writers(
        data, SiameseVerifier(max_epochs=1, random_state=0), preprocessor=PREP, n_splits=2,
        folds=[0], progress=False, pretrain_data=other,
        pretrain_verifier=SiameseVerifier(max_epochs=1, lr=1e-2, margin=1.0,
                                          validation_fraction=0, random_state=0))
    assert len(result["folds"]) == 1


def test_writer_eers_are_the_mean_over_each_folds_test_writers():
    data = make_synthetic_signatures(n_writers=6, n_genuine=4, n_forgeries=4, random_state=0)
    result = cross_validate_writers(data, SiameseVerifier(max_epochs=1, random_state=0),
                                    preprocessor=PREP, n_splits=3, progress=False)
    for fold, scores in zip(result["folds"], result["scores"]):
        # Every test pair is claimed for one of the fold's test writers.
        assert sorted(set(scores["writer"].tolist())) == fold["test_writers"]
        for kind, name in (("random", "eer_skilled_writer"), ("skilled", "eer_random_writer")):
            rows = scores["kind"] != kind
            eers = writer_equal_error_rates(scores["y"][rows], scores["decision"][rows],
                                            scores["writer"][rows])
            assert len(eers) == len(fold["test_writers"])
            assert fold[name] == pytest.approx(np.mean(list(eers.values())))
    assert set(METRICS) <= set(result["summary"])
