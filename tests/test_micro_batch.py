"""micro_batch_size: training batches embedded in checkpointed chunks."""

import numpy as np
import pytest
import torch

from skseg import SiameseVerifier
from skseg._pairs import as_bank
from skseg.nn import PairDataset
from skseg.nn import net as net_module


def _fit(d, **params):
    return SiameseVerifier(max_epochs=1, batch_size=64, micro_batch_size=16, random_state=0,
                           **params).fit(d["X_train"], d["y_train"])


def test_checkpointing_changes_memory_not_the_model(signature_pairs, monkeypatch):
    """Recomputed chunks replay their augmentation and dropout draws, and do not
    update BatchNorm's running statistics twice: the model is the one that plain
    chunked forwards (all activations kept) would train."""
    d = signature_pairs
    checkpointed = _fit(d)
    monkeypatch.setattr(net_module, "checkpoint", lambda function, x, **kwargs: function(x))
    plain = _fit(d)
    np.testing.assert_allclose(checkpointed.decision_function(d["X_test"]),
                               plain.decision_function(d["X_test"]), rtol=1e-4, atol=1e-5)
    # One running-statistics update per chunk forward, not two.
    batches = checkpointed.net_.history[-1]["batches"]
    chunks = sum(-(-b["train_batch_size"] // 16) for b in batches if "train_batch_size" in b)
    bn = next(m for m in checkpointed.net_.module_.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert int(bn.num_batches_tracked) == chunks > 1


def _saved_bytes_of_one_training_forward(net, d):
    """Bytes autograd keeps for the backward pass of one training batch."""
    bank, index = as_bank(d["X_train"])
    dataset = PairDataset(torch.from_numpy(bank), index, np.asarray(d["y_train"], np.float32))
    X, _ = next(iter(net.get_iterator(dataset, training=True)))
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    net.module_.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        net.infer(X)
    return sum(saved)


def test_chunks_keep_a_fraction_of_the_activations(signature_pairs):
    net = _fit(signature_pairs).net_
    chunked = _saved_bytes_of_one_training_forward(net, signature_pairs)
    net.micro_batch_size = None
    whole = _saved_bytes_of_one_training_forward(net, signature_pairs)
    assert chunked < whole / 10


def test_inference_in_chunks_gives_the_same_decisions(signature_pairs):
    clf = _fit(signature_pairs)
    chunked = clf.decision_function(signature_pairs["X_test"])
    clf.net_.micro_batch_size = None
    # Equal to float rounding; a GPU picks convolution kernels by batch size, so the
    # chunks' rounding differs more there (6e-6 on an H100).
    np.testing.assert_allclose(clf.decision_function(signature_pairs["X_test"]), chunked,
                               rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"micro_batch_size": 1}, "'micro_batch_size' parameter"),
        ({"micro_batch_size": 8, "accelerate": True}, "micro_batch_size=8 cannot be combined"),
    ],
)
def test_bad_micro_batch_settings_are_named(signature_pairs, params, match):
    d = signature_pairs
    with pytest.raises(ValueError, match=match):
        SiameseVerifier(max_epochs=1, **params).fit(d["X_train"][:20], d["y_train"][:20])
