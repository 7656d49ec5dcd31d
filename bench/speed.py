"""Speed and memory of skseg against the naive Siamese recipe of public notebooks.

Side by side, in one run, on the same machine, with the same backbone class, canvas
size, SigNet-style pairs (``make_pairs``), loss (``ContrastiveLoss``), optimizer
(AdamW) and torch threads (= cores). skseg trains the naive recipe's model, the global
embedding alone (``local_weight=0``; its default local match is extra work per image
that the naive recipe does not do):

1. **Training**: labelled pairs/s and image forwards/s of ``SiameseVerifier.fit`` on
   canvases preprocessed beforehand and passed as ``PairedCanvases`` (the fit alone is
   timed; forwards and pairs come from ``net_.history``), against the naive way: a
   ``Dataset`` whose ``__getitem__`` opens and preprocesses both images of a pair
   (PIL open -> grayscale -> resize -> invert -> tensor) on every access, a
   ``DataLoader(batch_size=32, shuffle=True)`` and two forwards per pair.
2. **All-pairs inference**: pairs/s of ``decision_function`` on every unordered pair
   among N images, alone and with the preprocessing of the N images included, against
   the naive per-pair loop (load + preprocess both images, two forwards, batched with a
   DataLoader), measured on a random subset of the pairs when there are many.
3. **Preprocessing**: images/s of ``SignaturePreprocessor`` with ``n_jobs=1`` and
   ``n_jobs=-1`` (its default backend, worker processes, and threads forced through
   ``joblib.parallel_config``), and the speed-up.
4. **Peak memory** of ``SiameseVerifier.fit(max_epochs=1)`` on all SigNet pairs of the
   data set as ``PairedCanvases``, in a fresh subprocess (peak RSS: VmHWM on Linux,
   where ``ru_maxrss`` would still hold the parent's; ``ru_maxrss`` elsewhere): bank
   size, the materialised pairs it avoids, model size, RSS before fit, peak RSS.
5. The same training and memory measurements with ``micro_batch_size`` (default 16:
   batches embedded in checkpointed chunks), the verifier's memory-saving setting,
   so that both trade-offs are in one table.
6. Training and inference images/s of the backbone alone (forward + backward + AdamW
   step, batches of the verifier's default size gathered from the uint8 bank on the
   device), with channels-last and PyTorch's default layout, and on a GPU in float32 and
   under bf16 autocast; on a GPU also as a fraction of its dense bf16 peak (FLOPs per
   image counted by ``torch.utils.flop_counter``), and GPU memory of ``fit``. Then the
   environment (torch and library versions, threads, CPU model and vector
   instructions, cores, GPU).

The naive rates are measured on at most ``--naive-pairs`` pairs (a rate, so it
extrapolates; the output says when it did). Goals are printed as PASS/FAIL next to
the measured ratios.

Usage::

    python bench/speed.py                                 # synthetic signatures
    python bench/speed.py --data ../shared/data/cedar     # a real folder
    python bench/speed.py --backbone signet --device cuda
    python bench/speed.py --quick                         # tiny sizes, a smoke test

Synthetic signatures are written as PNG files to a temporary folder first, so that the
naive way has files to open. Results go to ``--out`` (default
``bench/results/speed.json``).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import joblib
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg.datasets import load_signatures, make_pairs, make_synthetic_signatures
from skseg.evaluation import _environment
from skseg.nn import BACKBONES, ContrastiveLoss
from skseg.nn.net import forward_precision
from skseg.nn.siamese import SiameseModule

GOALS = {  # measured ratio, comparison, target
    "training": (">=", 20.0),
    "inference": (">=", 10.0),
    "preprocessing": (">=", 1.7),
    "memory": ("<=", 2.0),
}
NAIVE_BATCH = 32  # pairs per batch, as the notebooks do
EMBEDDING_DIM = 128

FULL = {"canvas": [155, 220], "writers": 20, "images_per_writer": 24,
        "all_pairs_images": 200, "epochs": 1, "naive_pairs": 2048}
QUICK = {"canvas": [80, 120], "writers": 3, "images_per_writer": 6,
         "all_pairs_images": 12, "epochs": 1, "naive_pairs": 64}


# -- environment and data ------------------------------------------------------------

def n_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device):
    """The package's report environment (device, threads, CPU capability, versions)
    with what a speed figure also depends on: the GPU or CPU model and the cores."""
    return {
        **_environment(device),
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "cpu": cpu_model(),
        "cores": n_cores(),
    }


def resolve_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {name}: CUDA is not available here.")
    return name


def synchronize(device):
    # CUDA runs asynchronously: stop the clock only when the work is done.
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def write_synthetic(folder, n_writers, images_per_writer, random_state=0):
    """Synthetic signatures as PNG files in the generic layout, loaded back as a folder."""
    n_genuine = max(2, images_per_writer // 2)
    data = make_synthetic_signatures(n_writers=n_writers, n_genuine=n_genuine,
                                     n_forgeries=images_per_writer - n_genuine,
                                     random_state=random_state)
    counts = {}
    for image, writer, genuine in zip(data.images, data.writer, data.genuine):
        sub = Path(folder, f"w{int(writer):03d}", "genuine" if genuine else "forged")
        sub.mkdir(parents=True, exist_ok=True)
        n = counts[sub] = counts.get(sub, 0) + 1
        Image.fromarray(image).save(sub / f"{n:03d}.png")
    return load_signatures(folder, layout="generic")


def keep_writers(data, n_writers):
    """The first ``n_writers`` writers of a loaded folder (to shorten a real-data run)."""
    keep = np.isin(data.writer, list(dict.fromkeys(data.writer))[:n_writers])
    return {"paths": np.asarray(data.paths)[keep], "writer": data.writer[keep],
            "genuine": data.genuine[keep]}


def signet_pairs(data, random_state=0):
    """SigNet-protocol pairs as positions into ``data["paths"]``, and their labels."""
    pairs, y, _ = make_pairs(data, random_state=random_state)
    position = {p: i for i, p in enumerate(map(str, data["paths"]))}
    index = np.vectorize(position.__getitem__, otypes=[np.int64])(pairs.astype(str))
    return index, y


# -- the naive baseline -------------------------------------------------------------

class NaivePairs(Dataset):
    """Public-notebook style: every access opens and preprocesses both images of a pair."""

    def __init__(self, paths, index, target, canvas):
        self.paths, self.index, self.target = list(map(str, paths)), index, target
        self.size = (canvas[1], canvas[0])  # PIL wants (width, height)

    def __len__(self):
        return len(self.index)

    def load(self, path):
        image = ImageOps.invert(Image.open(path).convert("L").resize(self.size, Image.BILINEAR))
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)

    def __getitem__(self, i):
        a, b = self.index[i]
        return (self.load(self.paths[a]), self.load(self.paths[b]),
                torch.tensor(self.target[i], dtype=torch.float32))


def naive_distance(model, x1, x2):
    # Two forwards per pair; the same normalised euclidean distance as skseg's default.
    e1, e2 = F.normalize(model(x1), dim=1), F.normalize(model(x2), dim=1)
    return torch.sqrt(torch.sum((e1 - e2) ** 2, dim=1) + 1e-12)


def naive_train(paths, index, y, canvas, backbone="compact", device="cpu", epochs=1,
                max_pairs=None, workers=0, seed=0):
    """Train the naive way for ``epochs`` passes, stopping after ``max_pairs`` pairs."""
    torch.manual_seed(seed)
    model = BACKBONES[backbone](embedding_dim=EMBEDDING_DIM).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = ContrastiveLoss(margin=SiameseVerifier().margin)  # skseg's default
    loader = DataLoader(NaivePairs(paths, index, y.astype(np.float32), canvas),
                        batch_size=NAIVE_BATCH, shuffle=True, num_workers=workers)
    budget = epochs * len(index) if not max_pairs else min(max_pairs, epochs * len(index))
    pairs = forwards = 0
    start = time.perf_counter()
    while pairs < budget:
        for x1, x2, target in loader:
            x1, x2, target = x1.to(device), x2.to(device), target.to(device)
            loss = criterion(naive_distance(model, x1, x2), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            pairs += len(target)
            forwards += len(x1) + len(x2)
            if pairs >= budget:
                break
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"pairs": pairs, "forwards": forwards, "seconds": seconds,
            "pairs_per_s": pairs / seconds, "forwards_per_s": forwards / seconds,
            "epoch_pairs": len(index), "extrapolated": pairs < epochs * len(index),
            "loader_workers": workers}


def naive_inference(paths, index, canvas, backbone="compact", device="cpu", workers=0, seed=0):
    """Distances of ``index`` pairs the naive way: load both images, two forwards."""
    torch.manual_seed(seed)
    model = BACKBONES[backbone](embedding_dim=EMBEDDING_DIM).to(device).eval()
    loader = DataLoader(NaivePairs(paths, index, np.zeros(len(index), np.float32), canvas),
                        batch_size=NAIVE_BATCH, shuffle=False, num_workers=workers)
    distances = []
    start = time.perf_counter()
    with torch.no_grad():
        for x1, x2, _ in loader:
            distances.append(naive_distance(model, x1.to(device), x2.to(device)).cpu())
    synchronize(device)
    seconds = time.perf_counter() - start
    n = len(torch.cat(distances))
    return {"pairs": n, "forwards": 2 * n, "seconds": seconds, "pairs_per_s": n / seconds}


# -- skseg ------------------------------------------------------------------------------

def skseg_train(bank, index, y, backbone="compact", device="cpu", epochs=1, seed=0,
                augment=False, micro_batch_size=None, mixed_precision="no"):
    """Time ``SiameseVerifier.fit`` on preprocessed canvases; count from its history.

    ``validation_fraction=0`` trains on every pair, as the naive epoch does; the fit
    still embeds the bank once more to choose the threshold (timed, not counted).
    ``augment`` is off by default, like the naive loop, so that both do the same work
    per image forward; ``--augment`` measures skseg's default training.
    """
    model = SiameseVerifier(backbone=backbone, max_epochs=epochs, validation_fraction=0.0,
                            device=device, random_state=seed, augment=augment, local_weight=0,
                            micro_batch_size=micro_batch_size, mixed_precision=mixed_precision)
    X = PairedCanvases(bank, index)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    history = model.net_.history
    batches = [b for epoch in history for b in epoch["batches"]]
    # Labelled pairs only, as the naive loop counts them: every one once per epoch
    # (validation_fraction=0). Pairs implied within batches are extra work, not counted.
    pairs = len(history) * len(index)
    trained = sum(b["train_pairs"] for b in batches)
    forwards = sum(b["train_batch_size"] for b in batches)
    loop = float(sum(history[:, "dur"]))  # skorch's epoch time: training batches only
    return {"pairs": pairs, "forwards": forwards, "seconds": seconds,
            "pairs_per_s": pairs / seconds, "forwards_per_s": forwards / seconds,
            "epoch_seconds": loop, "pairs_per_forward": pairs / max(forwards, 1),
            "trained_pairs_per_forward": trained / max(forwards, 1),
            "augment": model.augment, "batch_size_images": model.batch_size,
            "micro_batch_size": micro_batch_size,
            "mixed_precision": model.net_.mixed_precision or "no"}, model


def skseg_inference(model, paths, canvas):
    """``decision_function`` on all unordered pairs of ``paths``, preprocessing timed too."""
    index = np.column_stack(np.triu_indices(len(paths), k=1)).astype(np.int64)
    start = time.perf_counter()
    bank = SignaturePreprocessor(canvas_size=tuple(canvas), n_jobs=1).transform(list(paths))
    prep_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decision = model.decision_function(PairedCanvases(bank, index))
    seconds = time.perf_counter() - start
    assert decision.shape == (len(index),)
    n = len(index)
    return {"images": len(paths), "pairs": n, "forwards": len(paths),
            "decision_seconds": seconds, "preprocess_seconds": prep_seconds,
            "decision_pairs_per_s": n / seconds,
            "pairs_per_s": n / (seconds + prep_seconds)}, index


def measure_preprocessing(paths, canvas, cores, threads=True, stroke_descriptors=True):
    """Images/s of SignaturePreprocessor, one job vs all cores (default processes, and threads)."""
    paths = list(map(str, paths))
    runs, outputs = {}, {}
    configs = [("n_jobs=1", 1, None), ("n_jobs=-1 processes", -1, None)]
    if threads:  # the alternative backend, for comparison
        configs.append(("n_jobs=-1 threads", -1, "threading"))
    for name, n_jobs, backend in configs:
        prep = SignaturePreprocessor(canvas_size=tuple(canvas), n_jobs=n_jobs,
                                     stroke_descriptors=stroke_descriptors)
        context = joblib.parallel_config(backend=backend) if backend else nullcontext()
        with context:
            prep.transform(paths[: 2 * cores])  # start the workers outside the clock
            start = time.perf_counter()
            outputs[name] = prep.transform(paths)
            seconds = time.perf_counter() - start
        runs[name] = {"seconds": seconds, "images_per_s": len(paths) / seconds}
    base = runs["n_jobs=1"]["seconds"]
    for name in runs:
        runs[name]["speedup"] = base / runs[name]["seconds"]
    same = all(np.array_equal(outputs["n_jobs=1"], out) for out in outputs.values())
    return {"images": len(paths), "runs": runs, "identical_outputs": same,
            "stroke_descriptors": stroke_descriptors,
            # transform() leaves joblib its default, loky worker processes; they are
            # started outside the clock (warm), as in a session that preprocesses repeatedly
            "default_backend": "loky (processes), warm",
            "speedup": runs["n_jobs=-1 processes"]["speedup"]}, outputs["n_jobs=1"]


#: Dense bf16 tensor-core peaks in TFLOP/s, by a substring of torch's device name
#: (NVIDIA's datasheets, without sparsity). ``--peak-tflops`` overrides.
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200": 989.4,
                    "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(device):
    """The GPU's dense bf16 peak from :data:`PEAK_BF16_TFLOPS`, or None if unknown."""
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    for key, value in PEAK_BF16_TFLOPS.items():  # longer names first where they overlap
        if key in name:
            return value
    return None


def flops_per_image(module, shape, device):
    """Forward and forward+backward FLOPs per canvas, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    images = torch.zeros((2, *shape), dtype=torch.uint8, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        module(images).sum().backward()
    train = counter.get_total_flops() / 2
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(images)
    return counter.get_total_flops() / 2, train


def backbone_throughput(bank, steps, backbone="compact", device="cpu", batch=None, seed=0,
                        mixed_precision=None, channels_last=True, peak=None):
    """Training and inference images/s of one backbone as skseg runs it.

    Training: forward (augmentation on) + backward + AdamW step on batches of the
    verifier's default size gathered from the uint8 bank on the device. Inference:
    ``SiameseNet.embed``'s way (no grad, same batch size). ``mixed_precision="bf16"``
    runs the forwards under bf16 autocast, as ``SiameseVerifier(mixed_precision="bf16")``
    does.
    With the GPU's ``peak`` bf16 TFLOP/s, each rate is also given as a fraction of it.
    """
    batch = batch or SiameseVerifier().batch_size
    torch.manual_seed(seed)
    module = SiameseModule(backbone, EMBEDDING_DIM, augment=True,
                           channels_last=channels_last).to(device).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    criterion = ContrastiveLoss()
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(bank).to(device)  # the bank, resident as uint8
    autocast = forward_precision(mixed_precision, device)
    forward_flops, train_flops = flops_per_image(module, bank.shape[1:], device)

    def pick():
        chosen = torch.from_numpy(rng.integers(0, len(bank), batch)).to(device)
        return images.index_select(0, chosen)

    def train_step():
        with autocast:
            e = module(pick())
        target = torch.from_numpy(rng.integers(0, 2, batch // 2).astype(np.float32)).to(device)
        loss = criterion(module.pair_distance(e[0::2], e[1::2]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def inference_step():
        with torch.inference_mode(), autocast:
            module(pick())

    rates = {}
    for name, step in (("train", train_step), ("inference", inference_step)):
        module.train(name == "train")
        step()  # first call: kernel selection, allocations
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        rates[name] = steps * batch / (time.perf_counter() - start)
    result = {"backbone": backbone, "device": device, "batch": batch, "steps": steps,
              "mixed_precision": mixed_precision or "no", "channels_last": channels_last,
              "train_images_per_s": rates["train"], "inference_images_per_s": rates["inference"],
              "forward_gflops_per_image": forward_flops / 1e9,
              "train_gflops_per_image": train_flops / 1e9, "peak_bf16_tflops": peak}
    if peak:
        result["train_fraction_of_peak"] = train_flops * rates["train"] / (peak * 1e12)
        result["inference_fraction_of_peak"] = forward_flops * rates["inference"] / (peak * 1e12)
    return result


def throughput_variants(bank, steps, backbone, device, peak=None, batch=None):
    """:func:`backbone_throughput` in each layout, and on a GPU in each precision, so
    that the table shows where channels-last and bf16 help."""
    precisions = [None, "bf16"] if device.startswith("cuda") else [None]
    return [backbone_throughput(bank, steps, backbone, device, batch=batch,
                                mixed_precision=precision, channels_last=layout, peak=peak)
            for precision in precisions for layout in (True, False)]


def warm_up(bank, paths, index, y, canvas, backbone="compact", device="cpu"):
    """Run both ways once on a few pairs before any clock starts.

    First calls pay for lazy imports (the first optimizer step imports
    torch._dynamo), kernel selection and page faults: costs of neither way.
    """
    few = np.r_[np.flatnonzero(y == 1)[:8], np.flatnonzero(y == 0)[:8]]
    skseg_train(bank, index[few], y[few], backbone, device)
    naive_train(paths, index[few], y[few], canvas, backbone, device)


# -- peak memory, in a fresh process --------------------------------------------------

def _proc_status(field):
    """A memory field of /proc/self/status in bytes (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _ru_maxrss_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kB on Linux


def _rss_bytes():
    """Current resident set size (Linux), else the peak so far."""
    return _proc_status("VmRSS") or _ru_maxrss_bytes()


def _peak_rss_bytes():
    """Peak resident set size of this process image.

    On Linux ``ru_maxrss`` survives ``exec``: a child started from this (large)
    process begins with the parent's RSS as its peak. VmHWM is counted for the
    new image only, by the same kernel high-water mark; elsewhere, ``ru_maxrss``.
    """
    return _proc_status("VmHWM") or _ru_maxrss_bytes()


def memory_child(spec_path):
    """Runs in a fresh interpreter: load the bank, note the RSS, fit, note the peak."""
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    folder = Path(spec["folder"])
    # np.load keeps the pre-fit peak at about the bank: ru_maxrss then reflects the fit.
    bank, index, y = (np.load(folder / f"{name}.npy") for name in ("bank", "index", "y"))
    model = SiameseVerifier(backbone=spec["backbone"], max_epochs=1, device=spec["device"],
                            micro_batch_size=spec["micro_batch_size"], local_weight=0,
                            random_state=0)
    cold = _rss_bytes()
    # The first optimizer step of any torch program imports torch._dynamo, sympy, ...
    # (about 150 MB): pay it on a 1-parameter model, so the baseline holds it.
    weight = torch.zeros(1, requires_grad=True)
    weight.sum().backward()
    torch.optim.AdamW([weight]).step()
    baseline, peak_before = _rss_bytes(), _peak_rss_bytes()
    model.fit(PairedCanvases(bank, index), y)
    peak = _peak_rss_bytes()
    module = model.net_.module_
    tensors = [*module.parameters(), *module.buffers()]
    result = {
        "images": len(bank), "pairs": len(index), "micro_batch_size": spec["micro_batch_size"],
        "bank_bytes": int(bank.nbytes),
        "pairs_materialised_bytes": int(len(index) * 2 * bank.shape[1] * bank.shape[2]),
        "model_bytes": int(sum(t.numel() * t.element_size() for t in tensors)),
        "rss_after_data": cold, "rss_before_fit": baseline,
        "peak_rss_before_fit": peak_before, "peak_rss": peak,
        "ru_maxrss": _ru_maxrss_bytes(),  # may hold the parent's RSS: see _peak_rss_bytes
    }
    if spec["device"].startswith("cuda"):
        result["cuda_max_allocated"] = int(torch.cuda.max_memory_allocated())
    denominator = result["bank_bytes"] + result["model_bytes"]
    result["ratio"] = (peak - baseline) / denominator
    result["ratio_cold"] = (peak - cold) / denominator  # torch's lazy imports counted
    Path(spec["result"]).write_text(json.dumps(result))


def measure_fit_memory(bank, index, y, workdir, backbone="compact", device="cpu", threads=1,
                       micro_batch_size=None):
    """Peak RSS of fit in a fresh subprocess running this script with a hidden flag."""
    folder = Path(workdir, f"memory-{micro_batch_size}")
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in (("bank", bank), ("index", index), ("y", y)):
        np.save(folder / f"{name}.npy", value)
    spec = {"folder": str(folder), "backbone": backbone, "device": device,
            "threads": threads, "micro_batch_size": micro_batch_size,
            "result": str(folder / "result.json")}
    (folder / "spec.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, os.path.abspath(__file__), "--_memory-child",
                    str(folder / "spec.json")], check=True)
    return json.loads((folder / "result.json").read_text())


# -- report ---------------------------------------------------------------------------

def verdict(kind, value):
    op, target = GOALS[kind]
    ok = value >= target if op == ">=" else value <= target
    unit = "x" if kind != "memory" else ""
    return f"{op} {target:g}{unit}", "PASS" if ok else "FAIL"


def print_report(r):
    env, data = r["environment"], r["data"]
    mb = 1 / 2**20
    print(f"\nskseg speed: backbone {r['backbone']}, canvas {r['canvas'][0]}x{r['canvas'][1]}, "
          f"device {env['device']}{' (' + env['gpu'] + ')' if env['gpu'] else ''}")
    print(f"CPU {env['cpu']} ({env['cpu_capability']}), {env['cores']} cores, "
          f"torch {env['torch']}, {env['cpu_threads']} torch threads")
    print(f"data: {data['source']}, {data['writers']} writers, {data['images']} images, "
          f"{data['pairs']} SigNet pairs\n")
    rows = []
    tn, ts = r["training"]["naive"], r["training"]["skseg"]
    ratio = ts["pairs_per_s"] / tn["pairs_per_s"]
    rows.append(("training pairs/s", tn["pairs_per_s"], ts["pairs_per_s"], ratio,
                 *verdict("training", ratio)))
    rows.append(("training image forwards/s", tn["forwards_per_s"], ts["forwards_per_s"],
                 None, "", ""))
    rows.append(("training forwards per pair", tn["forwards"] / tn["pairs"],
                 ts["forwards"] / ts["pairs"], None, "", ""))
    inn, ins = r["inference"]["naive"], r["inference"]["skseg"]
    ratio = ins["pairs_per_s"] / inn["pairs_per_s"]
    rows.append(("all-pairs pairs/s (with prep)", inn["pairs_per_s"], ins["pairs_per_s"], ratio,
                 *verdict("inference", ratio)))
    rows.append(("all-pairs pairs/s (decision only)", None, ins["decision_pairs_per_s"],
                 ins["decision_pairs_per_s"] / inn["pairs_per_s"], "", ""))
    p = r["preprocessing"]
    for name, run in p["runs"].items():
        is_default = name == "n_jobs=-1 processes"
        rows.append((f"preprocess images/s {name}", None, run["images_per_s"],
                     run["speedup"] if name != "n_jobs=1" else None,
                     *(verdict("preprocessing", run["speedup"]) if is_default else ("", ""))))
    m = r["memory"]
    rows.append(("fit peak memory ratio", None, m["ratio"], None, *verdict("memory", m["ratio"])))
    saving = r.get("micro_batch")
    if saving:
        tm, mm, size = saving["training"], saving["memory"], saving["micro_batch_size"]
        ratio = tm["pairs_per_s"] / tn["pairs_per_s"]
        rows.append((f"training pairs/s, micro_batch={size}", tn["pairs_per_s"], tm["pairs_per_s"],
                     ratio, *verdict("training", ratio)))
        rows.append((f"fit peak memory ratio, micro_batch={size}", None, mm["ratio"], None,
                     *verdict("memory", mm["ratio"])))

    def cell(v, fmt="{:>12.1f}"):
        return f"{'':>12}" if v is None else fmt.format(v)

    print(f"{'measurement':<38}{'naive':>12}{'skseg':>12}{'ratio':>9}   {'goal':<9}")
    for name, naive, sk, ratio, goal, ok in rows:
        print(f"{name:<38}{cell(naive)}{cell(sk, '{:>12.2f}' if sk < 100 else '{:>12.1f}')}"
              f"{cell(ratio, '{:>8.1f}x'):>9}   {goal:<9}{ok}")
    print()
    notes = []
    if tn["extrapolated"]:
        notes.append(f"naive training measured on {tn['pairs']} of {tn['epoch_pairs']} pairs "
                     "per epoch; pairs/s extrapolated")
    if r["inference"]["naive_subset"]:
        notes.append(f"naive inference measured on {inn['pairs']} random pairs of "
                     f"{ins['pairs']} ({ins['images']} images); pairs/s extrapolated")
    notes.append(f"skseg fit {ts['seconds']:.2f}s ({ts['epoch_seconds']:.2f}s in epochs), "
                 f"{ts['pairs_per_forward']:.2f} labelled pairs per image forward "
                 f"({ts['trained_pairs_per_forward']:.2f} with implied pairs), "
                 f"augment={ts['augment']}; naive: no augmentation, "
                 f"DataLoader workers={tn['loader_workers']}")
    notes.append(f"preprocessing: {p['images']} images, default n_jobs=-1 backend "
                 f"{p['default_backend']}; outputs identical across backends: "
                 f"{p['identical_outputs']}")
    notes.append(f"memory ({m['pairs']} pairs, {m['images']} images): "
                 f"bank {m['bank_bytes'] * mb:.1f} MB (materialised pairs would be "
                 f"{m['pairs_materialised_bytes'] * mb:.1f} MB), "
                 f"model {m['model_bytes'] * mb:.1f} MB, RSS after imports and data "
                 f"{m['rss_after_data'] * mb:.1f} MB, + torch lazy imports = before fit "
                 f"{m['rss_before_fit'] * mb:.1f} MB, peak {m['peak_rss'] * mb:.1f} MB -> "
                 f"(peak - before) / (bank + model) = {m['ratio']:.2f} "
                 f"({m['ratio_cold']:.2f} counting the lazy imports)")
    if saving:
        notes.append(f"micro_batch_size={size}: fit {tm['seconds']:.2f}s "
                     f"({tm['seconds'] / ts['seconds']:.2f}x the default's), peak "
                     f"{mm['peak_rss'] * mb:.1f} MB against {m['peak_rss'] * mb:.1f} MB")
    notes.append(f"skseg fit precision: {ts['mixed_precision']}")
    if "cuda_max_allocated" in m:
        notes.append(f"GPU memory of fit: peak allocated {m['cuda_max_allocated'] * mb:.1f} MB")
    for note in notes:
        print("- " + note)
    print_throughput(r["throughput"])


def print_throughput(rows):
    """The backbone-alone table: images/s per layout and precision (and share of peak)."""
    first = rows[0]
    print(f"\n{first['backbone']} backbone alone on {first['device']}, batches of "
          f"{first['batch']}: {first['forward_gflops_per_image']:.3f} GFLOP per image forward, "
          f"{first['train_gflops_per_image']:.3f} forward + backward")
    peak = first.get("peak_bf16_tflops")
    print(f"{'precision':<11}{'layout':<16}{'train img/s':>13}{'infer img/s':>13}"
          + (f"{'train % peak':>14}{'infer % peak':>14}" if peak else ""))
    for row in rows:
        line = (f"{row['mixed_precision']:<11}"
                f"{'channels-last' if row['channels_last'] else 'contiguous':<16}"
                f"{row['train_images_per_s']:>13.1f}{row['inference_images_per_s']:>13.1f}")
        if peak:
            line += (f"{100 * row['train_fraction_of_peak']:>13.2f}%"
                     f"{100 * row['inference_fraction_of_peak']:>13.2f}%")
        print(line)
    if peak:
        print(f"(% of the GPU's dense bf16 peak, {peak:g} TFLOP/s)")


# -- main -------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a signature folder (load_signatures); "
                        "default: synthetic signatures written to a temporary folder")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="compact")
    parser.add_argument("--canvas", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--writers", type=int, help="synthetic writers (with --data: keep "
                        "the first N writers; default all)")
    parser.add_argument("--images-per-writer", type=int,
                        help="synthetic images per writer, half genuine, half forged")
    parser.add_argument("--all-pairs-images", type=int,
                        help="N images whose N(N-1)/2 pairs are scored")
    parser.add_argument("--epochs", type=int, help="training epochs (both ways)")
    parser.add_argument("--augment", action="store_true",
                        help="train skseg with its default augmentation (the naive loop has "
                        "none; off by default so that both do the same work per image)")
    parser.add_argument("--naive-pairs", type=int,
                        help="most pairs the naive ways process (0: all); a rate, extrapolated")
    parser.add_argument("--naive-workers", type=int, default=0,
                        help="DataLoader workers of the naive way (notebooks: 0)")
    parser.add_argument("--micro-batch-size", type=int, default=16,
                        help="also measure training and memory with this micro_batch_size "
                        "(0: skip)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--mixed-precision", choices=["no", "bf16"], default="no",
                        help="SiameseVerifier's mixed_precision for the skseg fits")
    parser.add_argument("--throughput-steps", type=int,
                        help="timed steps of the backbone-alone measurement (default 10, "
                        "100 on a GPU)")
    parser.add_argument("--throughput-batch", type=int,
                        help="batch of the backbone-alone measurement (default: the "
                        "verifier's batch_size, 128)")
    parser.add_argument("--peak-tflops", type=float,
                        help="the GPU's dense bf16 peak in TFLOP/s (default: known GPUs)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.json"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--preprocessing-only", action="store_true",
                        help="measure the preprocessing alone, then stop")
    parser.add_argument("--no-stroke-descriptors", dest="stroke_descriptors",
                        action="store_false",
                        help="preprocess without the stroke descriptors (what they cost)")
    parser.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if args.data and not args.quick and key in ("writers", "images_per_writer"):
            continue  # a real folder: all of it unless --writers says otherwise
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def main(argv=None):
    args = parse_args(argv)
    cores = n_cores()
    torch.set_num_threads(cores)  # the same threads for both ways
    if args.memory_child:
        return memory_child(args.memory_child)
    device = resolve_device(args.device)
    canvas = tuple(args.canvas)

    with tempfile.TemporaryDirectory(prefix="skseg-speed-") as workdir:
        if args.data:
            data = load_signatures(args.data)
            if args.writers:
                data = keep_writers(data, args.writers)
            source = args.data
        else:
            data = write_synthetic(workdir, args.writers, args.images_per_writer)
            source = f"synthetic PNGs ({args.images_per_writer} images per writer)"
        paths = np.asarray(data["paths"]).astype(str)
        index, y = signet_pairs(data)
        print(f"{len(paths)} images, {len(index)} pairs; measuring...", flush=True)

        prep, bank = measure_preprocessing(paths, canvas, cores,
                                           stroke_descriptors=args.stroke_descriptors)
        if args.preprocessing_only:
            return _report_preprocessing(prep, source, cores, args.out)
        warm_up(bank, paths, index, y, canvas, args.backbone, device)
        sk_train, model = skseg_train(bank, index, y, args.backbone, device, args.epochs,
                                      augment=args.augment,
                                      mixed_precision=args.mixed_precision)
        naive = naive_train(paths, index, y, canvas, args.backbone, device, args.epochs,
                            args.naive_pairs, args.naive_workers)

        rng = np.random.default_rng(0)
        n = min(args.all_pairs_images, len(paths))
        chosen = np.sort(rng.choice(len(paths), n, replace=False))
        sk_inf, all_pairs = skseg_inference(model, paths[chosen], canvas)
        subset = bool(args.naive_pairs) and len(all_pairs) > args.naive_pairs
        if subset:
            all_pairs = all_pairs[np.sort(rng.choice(len(all_pairs), args.naive_pairs,
                                                     replace=False))]
        naive_inf = naive_inference(paths[chosen], all_pairs, canvas, args.backbone, device,
                                    args.naive_workers)

        steps = args.throughput_steps or (2 if args.quick else
                                          100 if device.startswith("cuda") else 10)
        throughput = throughput_variants(bank, steps, args.backbone, device,
                                         args.peak_tflops or peak_tflops(device),
                                         args.throughput_batch)
        memory = measure_fit_memory(bank, index, y, workdir, args.backbone, device, cores)
        saving = None
        if args.micro_batch_size:  # the memory-saving setting, measured the same ways
            saving = {
                "micro_batch_size": args.micro_batch_size,
                "training": skseg_train(bank, index, y, args.backbone, device, args.epochs,
                                        augment=args.augment,
                                        micro_batch_size=args.micro_batch_size,
                                        mixed_precision=args.mixed_precision)[0],
                "memory": measure_fit_memory(bank, index, y, workdir, args.backbone, device,
                                             cores, args.micro_batch_size),
            }

    result = {
        "environment": environment(device),
        "backbone": args.backbone, "canvas": list(canvas), "quick": args.quick,
        "data": {"source": source, "writers": int(len(np.unique(data["writer"]))),
                 "images": int(len(paths)), "pairs": int(len(index))},
        "training": {"naive": naive, "skseg": sk_train,
                     "ratio": sk_train["pairs_per_s"] / naive["pairs_per_s"]},
        "inference": {"naive": naive_inf, "skseg": sk_inf, "naive_subset": subset,
                      "ratio": sk_inf["pairs_per_s"] / naive_inf["pairs_per_s"]},
        "preprocessing": prep,
        "memory": memory,
        "micro_batch": saving,
        "throughput": throughput,
    }
    result["goals"] = {
        "training": verdict("training", result["training"]["ratio"]),
        "inference": verdict("inference", result["inference"]["ratio"]),
        "preprocessing": verdict("preprocessing", prep["speedup"]),
        "memory": verdict("memory", memory["ratio"]),
    }
    if saving:
        result["goals"]["training_micro_batch"] = verdict(
            "training", saving["training"]["pairs_per_s"] / naive["pairs_per_s"])
        result["goals"]["memory_micro_batch"] = verdict("memory", saving["memory"]["ratio"])
    print_report(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"\nWrote {out}")
    return result


def _report_preprocessing(prep, source, cores, out):
    """Print and write the preprocessing measure alone (``--preprocessing-only``)."""
    for name, run in prep["runs"].items():
        print(f"preprocessing {name:<22} {run['images_per_s']:8.1f} images/s  "
              f"({run['seconds']:.1f} s, {run['speedup']:.2f}x)")
    goal = " ".join(verdict("preprocessing", prep["speedup"]))
    print(f"stroke descriptors: {prep['stroke_descriptors']}; outputs identical: "
          f"{prep['identical_outputs']}; goal {goal}")
    result = {"data": source, "cores": cores, "preprocessing": prep}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()
