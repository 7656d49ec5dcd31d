"""cross_validate_writers: what each fold trains on and tests on."""

import numpy as np
import pytest
from sklearn.utils import Bunch

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_synthetic_signatures
from skseg.evaluation import METRICS, cross_validate_writers
from skseg.metrics import writer_equal_error_rates
from skseg.verifier import SIZE_WEIGHTS

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


def test_extra_training_sharing_a_file_is_refused_before_loading():
    data = Bunch(paths=[f"/nowhere/{i}.png" for i in range(8)], writer=[0, 0, 1, 1, 2, 2, 3, 3],
                 genuine=[True, False] * 4)
    # The same file, spelt another way.
    extra = Bunch(paths=["/nowhere/sub/../3.png", "/nowhere/x.png"], writer=[9, 9],
                  genuine=[True, True])
    with pytest.raises(ValueError, match=r"shares 1 image file.*'/nowhere/3.png'"):
        cross_validate_writers(data, n_splits=2, extra_training=extra, progress=False)


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
