"""One process of tests/test_accelerate.py's data-parallel run (launched by torchrun).

Each process fits the same verifier through Accelerate on the CPU (gloo) and
writes, to OUT/rank<k>.npz, its decision values and how many batches it trained.
"""

import sys
from pathlib import Path

import numpy as np

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures


def fit(accelerate):
    """The verifier both the processes and the test fit: ``(model, X)``."""
    data = make_synthetic_signatures(n_writers=8, n_genuine=4, n_forgeries=4, random_state=0)
    pairs, y, _ = make_pairs(data, random_state=0)
    X = SignaturePreprocessor(canvas_size=(32, 48)).transform(pairs)
    clf = SiameseVerifier(max_epochs=2, batch_size=16, random_state=0, accelerate=accelerate)
    return clf.fit(X, y), X


def main(out):
    clf, X = fit({"cpu": True})
    from accelerate import PartialState

    state = PartialState()
    batches = [len(epoch["batches"]) for epoch in clf.net_.history]
    np.savez(Path(out) / f"rank{state.process_index}.npz",
             decision=clf.decision_function(X), batches=np.array(batches),
             processes=state.num_processes)


if __name__ == "__main__":
    main(sys.argv[1])
