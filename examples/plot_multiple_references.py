"""
===============================================
Verifying against several reference signatures
===============================================

A bank or a forensic examiner usually holds several genuine signatures of the
claimed writer, not one. A signature varies from one signing to the next, so
a single reference may happen to be an unusual one; comparing the questioned
signature with every reference and combining the scores averages that out.

This example enrols each test writer with a few genuine references and
compares three ways to combine the scores of the (reference, questioned)
pairs:

- **one reference**: the score against the first reference only;
- **mean**: the mean of the decisions against all references. It uses every
  reference and is robust to one odd reference;
- **max**: the decision of the closest reference. It accepts a genuine
  signature that resembles any one of the references, but a forgery also only
  needs to resemble one of them.

A fourth way uses :meth:`~skseg.SiameseVerifier.embed`: the distance to the
mean of the references' embeddings (a writer *template*), which needs one
embedding per reference, computed once at enrolment.
"""

# %%
# Train on some writers
# ---------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import RocCurveDisplay

from skseg import PairedCanvases, SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures
from skseg.metrics import equal_error_rate

data = make_synthetic_signatures(
    n_writers=24, n_genuine=12, n_forgeries=8, forgery_strength=2.5, random_state=0
)
prep = SignaturePreprocessor(canvas_size=(64, 96))
# One canvas per image, the size of its ink and its stroke descriptor, which
# the canvas no longer shows and the verifier weighs (``size_weight``,
# ``stroke_weight``).
canvases, sizes, strokes = prep.transform_with_cues(data.images)

writer = data.writer.astype(int)
pairs, y, groups = make_pairs(data, random_state=0)
train = groups.astype(int) < 16  # writers 0-15 train, 16-23 are new writers
# ``local_weight=0``: the template below averages embeddings, which only the
# global embedding allows; local matching (the default) compares two feature
# maps position by position, and a mean of maps is no signature's map.
clf = SiameseVerifier(max_epochs=10, local_weight=0, module__backbone_kwargs={"width": 16},
                      random_state=0)
clf.fit(prep.transform(pairs[train]), y[train])  # pairs of paths -> PairedCanvases

# %%
# Enrol the new writers
# ---------------------
# For each new writer, the first ``n_references`` genuine signatures are the
# references; the other genuine signatures and all forgeries are questioned.
# Every (reference, questioned) pair is scored with
# :meth:`~skseg.SiameseVerifier.decision_function`, as index pairs into the
# enrolled canvases, sizes and descriptors (:class:`~skseg.PairedCanvases`).
n_references = 4
references, questioned, labels = [], [], []
for w in range(16, 24):
    genuine = np.flatnonzero((writer == w) & data.genuine)
    forged = np.flatnonzero((writer == w) & ~data.genuine)
    references.append(genuine[:n_references])
    questioned.append(np.concatenate([genuine[n_references:], forged]))
    labels.append(np.r_[np.ones(len(genuine) - n_references), np.zeros(len(forged))])

decisions = []  # per questioned signature: its decisions against each reference
for refs, quest in zip(references, questioned):
    grid = PairedCanvases(canvases, [[r, q] for q in quest for r in refs], sizes, strokes)
    decisions.append(clf.decision_function(grid).reshape(len(quest), len(refs)))
decisions = np.concatenate(decisions)
y_quest = np.concatenate(labels).astype(int)
print(decisions.shape, "decisions:", y_quest.sum(), "genuine and",
      (y_quest == 0).sum(), "forged questioned signatures")

# %%
# The template: mean of the reference embeddings
# ----------------------------------------------
# The verifier compares L2-normalised embeddings with the euclidean distance
# (the defaults ``normalize=True``, ``distance="euclidean"``), so the template
# is renormalised and the decision is ``threshold_`` minus the distance to it.
# The size term compares the questioned size with the references' mean
# log-size, weighted as the verifier weighs it (``size_weight_``).
embeddings = clf.embed(canvases)
log_sizes = np.log(sizes)
template_decision = []
for refs, quest in zip(references, questioned):
    template = embeddings[refs].mean(axis=0)
    template /= np.linalg.norm(template)
    distance = np.linalg.norm(embeddings[quest] - template, axis=1)
    size_ratio = np.abs(log_sizes[quest] - log_sizes[refs].mean(axis=0)).sum(axis=1)
    template_decision.append(clf.threshold_ - distance - clf.size_weight_ * size_ratio)
template_decision = np.concatenate(template_decision)

# %%
# Compare
# -------
# A single reference's EER depends on which reference it is, so it is shown
# for each of the four choices; the ROC curve is that of the first.
single = [equal_error_rate(y_quest, decisions[:, k])[0] for k in range(n_references)]
print("one reference:", ", ".join(f"EER {e:.3f}" for e in single),
      f"(mean {np.mean(single):.3f})")

scores = {
    "one reference (first)": decisions[:, 0],
    f"mean of {n_references}": decisions.mean(axis=1),
    f"max of {n_references}": decisions.max(axis=1),
    "template (embed)": template_decision,
}
fig, ax = plt.subplots(figsize=(5, 5))
for name, score in scores.items():
    eer, _ = equal_error_rate(y_quest, score)
    if not name.startswith("one"):
        print(f"{name}: EER {eer:.3f}")
    RocCurveDisplay.from_predictions(y_quest, score, ax=ax, name=f"{name}, EER {eer:.2f}")
ax.set_title("New writers, questioned signatures")
fig.tight_layout()
plt.show()

# %%
# The combined decisions are on the scale of one pair's decision but are not
# calibrated: the threshold of 0 and ``predict_proba`` were fitted for single
# pairs. Before deciding with a combined score, choose its cut on labelled
# questioned signatures of enrolled writers that are not the test writers,
# for example with :func:`skseg.threshold.choose_threshold`. The
# ``skseg verify`` command averages the decisions of all references given.
