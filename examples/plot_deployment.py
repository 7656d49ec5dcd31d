"""
==================================
Saving and loading a trained model
==================================

A fitted pipeline (preprocessor and verifier) can be saved in two ways:

- :func:`skseg.save` / :func:`skseg.load`: a ``.safetensors`` file with the
  weights as tensors and the settings as JSON. Loading it executes nothing
  from the file, so it is the format to share models in.
- :func:`joblib.dump` / :func:`joblib.load`: a pickle of the whole object,
  which works for any model (custom backbones, callbacks), but loading a
  pickle runs code chosen by whoever wrote the file: load only files you
  produced yourself or fully trust.

Both give back a model with the same predictions.
"""

# %%
# Train a small pipeline
# ----------------------
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures

data = make_synthetic_signatures(n_writers=8, n_genuine=6, n_forgeries=6, random_state=0)
pairs, y, groups = make_pairs(data, random_state=0)
pipe = Pipeline(
    [
        ("prep", SignaturePreprocessor(canvas_size=(64, 96))),
        (
            "clf",
            SiameseVerifier(max_epochs=3, module__backbone_kwargs={"width": 16}, random_state=0),
        ),
    ]
)
pipe.fit(pairs, y)

# %%
# The safe format
# ---------------
# The preprocessor's settings travel with the model, so the loaded pipeline
# takes raw scans (here arrays; in practice file paths) exactly as before.
# ``skseg.load`` computes on the CPU unless told otherwise (``device=``).
import skseg

folder = Path(tempfile.mkdtemp())
safe_path = folder / "verifier.safetensors"
skseg.save(pipe, safe_path)

loaded = skseg.load(safe_path)
before = pipe.decision_function(pairs)
print(loaded)
print("identical decisions:", np.array_equal(before, loaded.decision_function(pairs)))
print("identical predictions:", np.array_equal(pipe.predict(pairs), loaded.predict(pairs)))

# %%
# The file holds the weights, and a JSON header with everything else; it can
# be inspected without skseg, with the ``safetensors`` package alone:
import json

from safetensors import safe_open

with safe_open(str(safe_path), framework="pt") as f:
    header = json.loads(f.metadata()["skseg"])
    n_tensors = len(list(f.keys()))
print(n_tensors, "tensors; header keys:", sorted(header))
print("threshold:", header["verifier"]["threshold"])
print("preprocessor:", header["preprocessor"])

# %%
# Round trip with joblib
# ----------------------
# The pickle holds the whole skorch net, optimizer state included, hence a
# larger file.
joblib_path = folder / "verifier.joblib"
joblib.dump(pipe, joblib_path)
loaded = joblib.load(joblib_path)
print("identical decisions:", np.array_equal(before, loaded.decision_function(pairs)))
for path in (safe_path, joblib_path):
    print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")

# %%
# What to keep next to the file
# -----------------------------
# A pickle is tied to the library versions that wrote it: record them, and
# load with the same versions of skseg, scikit-learn, skorch and torch.
import sklearn
import skorch
import torch

print({m.__name__: m.__version__ for m in (skseg, sklearn, skorch, torch)})
