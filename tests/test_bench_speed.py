"""Smoke test of bench/speed.py: each measurement runs on tiny inputs and counts right.

No timing is asserted: the numbers mean something only on an idle machine.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import bench_script

CANVAS = (32, 48)


@pytest.fixture(scope="module")
def speed():
    with bench_script("speed") as module:
        # One thread: tiny batches gain nothing from more, and a busy machine's
        # oversubscribed OpenMP threads would slow them down many times.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield module
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(speed, tmp_path_factory):
    """2 synthetic writers of 4 images (2 genuine, 2 forged), as PNG files."""
    data = speed.write_synthetic(tmp_path_factory.mktemp("sigs"), 2, 4)
    paths = np.asarray(data["paths"]).astype(str)
    index, y = speed.signet_pairs(data)
    prep, bank = speed.measure_preprocessing(paths, CANVAS, cores=2, threads=False)
    return {"paths": paths, "index": index, "y": y, "bank": bank, "prep": prep}


def test_data_and_preprocessing(tiny):
    paths, index, y, bank = tiny["paths"], tiny["index"], tiny["y"], tiny["bank"]
    assert len(paths) == 8 and all(Path(p).is_file() for p in paths)
    # SigNet protocol: C(2, 2) genuine + as many skilled pairs per writer.
    assert index.shape == (4, 2) and y.tolist().count(1) == 2
    assert bank.shape == (8, *CANVAS) and bank.dtype == np.uint8
    prep = tiny["prep"]
    assert set(prep["runs"]) == {"n_jobs=1", "n_jobs=-1 processes"}
    assert prep["identical_outputs"] and prep["images"] == 8
    assert all(run["images_per_s"] > 0 for run in prep["runs"].values())


def test_preprocessing_only_stops_after_it(speed, tmp_path, capsys):
    out = tmp_path / "prep.json"
    result = speed.main(["--quick", "--preprocessing-only", "--no-stroke-descriptors",
                         "--out", str(out)])
    assert set(result) == {"data", "cores", "preprocessing"}
    assert result["preprocessing"]["stroke_descriptors"] is False
    assert out.is_file() and "stroke descriptors: False" in capsys.readouterr().out


def test_training_counts(speed, tiny):
    index, y = tiny["index"], tiny["y"]
    naive = speed.naive_train(tiny["paths"], index, y, CANVAS, epochs=2)
    assert naive["pairs"] == 2 * len(index) and naive["forwards"] == 2 * naive["pairs"]
    assert not naive["extrapolated"]
    capped = speed.naive_train(tiny["paths"], index, y, CANVAS, epochs=3, max_pairs=5)
    assert capped["pairs"] == 8 and capped["extrapolated"]  # whole batches of 4 pairs

    result, model = speed.skseg_train(tiny["bank"], index, y, epochs=2)
    assert result["pairs"] == 2 * len(index)  # validation_fraction=0: every pair trained
    used = len(np.unique(index))
    assert 2 * used <= result["forwards"] <= 2 * 2 * len(index)
    assert result["pairs_per_s"] > 0 and result["epoch_seconds"] <= result["seconds"]
    chunked, _ = speed.skseg_train(tiny["bank"], index, y, epochs=2, micro_batch_size=2)
    assert chunked["micro_batch_size"] == 2 and chunked["pairs"] == result["pairs"]

    inference, all_pairs = speed.skseg_inference(model, tiny["paths"][:5], CANVAS)
    assert inference["pairs"] == 10 and all_pairs.shape == (10, 2)
    naive_inf = speed.naive_inference(tiny["paths"][:5], all_pairs[:7], CANVAS)
    assert naive_inf["pairs"] == 7 and naive_inf["forwards"] == 14


def test_backbone_throughput(speed, tiny):
    result = speed.backbone_throughput(tiny["bank"], steps=1, batch=4, peak=100.0)
    assert result["train_images_per_s"] > 0 and result["inference_images_per_s"] > 0
    # FLOPs counted by torch: forward + backward is about 3x the forward.
    forward, train = result["forward_gflops_per_image"], result["train_gflops_per_image"]
    assert 0 < forward and 2 * forward < train < 4 * forward
    assert result["train_fraction_of_peak"] == pytest.approx(
        train * 1e9 * result["train_images_per_s"] / 100e12)
    rows = speed.throughput_variants(tiny["bank"], 1, "compact", "cpu")
    # On the CPU: float32 only, in both layouts.
    assert [(r["mixed_precision"], r["channels_last"]) for r in rows] == [
        ("no", True), ("no", False)]
    assert speed.peak_tflops("cpu") is None


def test_bf16_throughput_runs_on_the_cpu(speed, tiny):
    result = speed.backbone_throughput(tiny["bank"], steps=1, batch=4, mixed_precision="bf16",
                                       channels_last=False)
    assert result["mixed_precision"] == "bf16" and not result["channels_last"]
    assert result["train_images_per_s"] > 0


@pytest.mark.parametrize("micro_batch_size", [None, 2])
def test_fit_memory(speed, tiny, tmp_path, micro_batch_size):
    # The script's own way: a fresh interpreter running it with the hidden flag.
    result = speed.measure_fit_memory(tiny["bank"], tiny["index"], tiny["y"], tmp_path,
                                      threads=1, micro_batch_size=micro_batch_size)
    assert result["micro_batch_size"] == micro_batch_size
    assert result["bank_bytes"] == tiny["bank"].nbytes
    assert result["pairs_materialised_bytes"] == len(tiny["index"]) * 2 * CANVAS[0] * CANVAS[1]
    assert result["model_bytes"] > 0 and result["rss_before_fit"] > 0
    # VmHWM and VmRSS are counted apart: equal up to a few pages when fit adds nothing.
    assert result["peak_rss"] >= 0.99 * result["rss_before_fit"]
    assert np.isfinite(result["ratio"]) and np.isfinite(result["ratio_cold"])


def test_verdicts(speed):
    assert speed.verdict("training", 25.0)[1] == "PASS"
    assert speed.verdict("training", 5.0)[1] == "FAIL"
    assert speed.verdict("memory", 1.5)[1] == "PASS"
    assert speed.verdict("memory", 3.0)[1] == "FAIL"


def test_environment_is_the_packages_with_the_machine(speed):
    from skseg.evaluation import _environment

    env = speed.environment("cpu")
    # The package's own record (capability, library versions), one source for both.
    assert {k: env[k] for k in _environment("cpu")} == _environment("cpu")
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["gpu"] is None and env["cores"] >= 1 and env["cpu"]
