"""Data-parallel training through Accelerate, on the CPU: two processes, one model."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")

from skseg import SiameseVerifier  # noqa: E402
from skseg.nn import PairBatches, PairDataset  # noqa: E402

from .conftest import assert_same_weights  # noqa: E402


def test_shards_split_an_epoch_evenly():
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 60, (400, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    target = rng.integers(0, 2, len(pairs)).astype(np.float32)
    dataset = PairDataset(torch.zeros((60, 4, 4), dtype=torch.uint8), pairs, target)
    whole = PairBatches(dataset, 16, shuffle=True, random_state=0).plan_epoch()
    shards = [PairBatches(dataset, 16, shuffle=True, random_state=0, num_shards=3, shard=k)
              .plan_epoch() for k in range(3)]
    assert len({len(s) for s in shards}) == 1  # same number of steps in every process
    assert sum(len(s) for s in shards) > len(whole) - 3
    taken = [tuple(images) for s in shards for images, _, _ in s]
    assert len(set(taken)) == len(taken)  # no batch trained twice
    assert set(taken) <= {tuple(images) for images, _, _ in whole}
    with pytest.raises(ValueError, match=r"shard=3 is not in \[0, num_shards=3\)"):
        PairBatches(dataset, 16, num_shards=3, shard=3)


def test_one_process_matches_plain_training(signature_pairs):
    d = signature_pairs
    plain = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], d["y_train"])
    accelerated = SiameseVerifier(max_epochs=1, random_state=0, accelerate={"cpu": True})
    accelerated.fit(d["X_train"], d["y_train"])
    np.testing.assert_allclose(accelerated.decision_function(d["X_test"]),
                               plain.decision_function(d["X_test"]), atol=1e-5)
    # The fitted net is a plain one: picklable, and saved without the Accelerator.
    assert type(accelerated.net_).__name__ == "SiameseNet"


def test_warm_start_through_accelerate_starts_from_the_last_fit(signature_pairs):
    d = signature_pairs
    plain = SiameseVerifier(max_epochs=1, random_state=0).fit(d["X_train"], d["y_train"])
    tuned = SiameseVerifier(max_epochs=1, random_state=0, lr=1e-12, warm_start=True,
                            accelerate={"cpu": True})
    tuned.net_ = plain.net_  # the fit to start from
    tuned.fit(d["X_test"], d["y_test"])
    assert_same_weights(tuned, plain)


def test_bad_accelerate_settings_are_named(signature_pairs):
    d = signature_pairs
    with pytest.raises(ValueError, match="accelerate=.*no_such_option"):
        SiameseVerifier(max_epochs=1, accelerate={"no_such_option": 1}).fit(
            d["X_train"], d["y_train"])


@pytest.mark.slow
def test_two_processes_train_one_model_on_half_the_batches_each(tmp_path):
    worker = Path(__file__).with_name("accelerate_worker.py")
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(worker), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank{k}.npz") for k in range(2)]
    assert all(int(r["processes"]) == 2 for r in ranks)
    # DDP kept the two replicas identical ...
    np.testing.assert_allclose(ranks[0]["decision"], ranks[1]["decision"], atol=1e-5)
    # ... while each process trained on half of each epoch's batches.
    spec = importlib.util.spec_from_file_location("accelerate_worker", worker)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    one_process, _ = module.fit(accelerate=False)
    whole = np.array([len(epoch["batches"]) for epoch in one_process.net_.history])
    for rank in ranks:
        np.testing.assert_array_equal(rank["batches"], whole // 2)
