"""
=========================================
Quick start: verify signatures end to end
=========================================

The whole workflow on synthetic signatures: make labelled pairs, split them
by writer, train a :class:`~sklearn.pipeline.Pipeline` of
:class:`~skseg.SignaturePreprocessor` and :class:`~skseg.SiameseVerifier`,
and measure the equal error rate (EER) on writers the model has never seen.
"""

# %%
# Synthetic signatures
# --------------------
# :func:`~skseg.datasets.make_synthetic_signatures` returns the same fields as
# :func:`~skseg.datasets.load_signatures` does for a folder of scans: images,
# a writer id and a genuine flag per image. ``forgery_strength=2.5`` makes the
# forgeries easier to spot than the default, so that a few epochs on a CPU
# are enough to see the model learn.
import matplotlib.pyplot as plt
import numpy as np

from skseg.datasets import make_pairs, make_synthetic_signatures

data = make_synthetic_signatures(
    n_writers=24, n_genuine=8, n_forgeries=8, forgery_strength=2.5, random_state=0
)
print(len(data.images), "images of", len(np.unique(data.writer)), "writers")

fig, axes = plt.subplots(2, 4, figsize=(9, 3))
for row, genuine in zip(axes, [True, False]):
    shown = np.flatnonzero((data.writer == "0") & (data.genuine == genuine))[:4]
    for ax, i in zip(row, shown):
        ax.imshow(data.images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
    row[0].set_title("genuine" if genuine else "forged", loc="left", fontsize=10)
fig.suptitle("Writer 0")
fig.tight_layout()

# %%
# Pairs, split by writer
# ----------------------
# :func:`~skseg.datasets.make_pairs` follows the SigNet protocol: all pairs of
# two genuine signatures of a writer (label 1) and as many pairs of a genuine
# signature with a skilled forgery of it (label 0). ``groups`` is the writer of
# each pair. The test writers are kept out of training entirely: split on
# ``groups``, never on pairs.
from sklearn.model_selection import GroupShuffleSplit

pairs, y, groups = make_pairs(data, random_state=0)
train, test = next(
    GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0).split(pairs, y, groups)
)
print(len(pairs), "pairs;", len(train), "for training,", len(test), "for testing")
print("test writers:", ", ".join(sorted(set(groups[test]), key=int)))

# %%
# The pipeline
# ------------
# The preprocessor turns each scan into a small uint8 canvas (background
# removed, cropped, centred, ink high); the verifier is a Siamese network
# trained with the contrastive loss. ``module__backbone_kwargs`` reaches the
# backbone's own settings: a narrower :class:`~skseg.nn.CompactNet` trains
# faster on a CPU. After training, the verifier chooses its decision
# threshold at the EER of pairs it held out (``validation_fraction``).
from sklearn.pipeline import Pipeline

from skseg import SiameseVerifier, SignaturePreprocessor

pipe = Pipeline(
    [
        ("prep", SignaturePreprocessor(canvas_size=(64, 96))),
        (
            "clf",
            SiameseVerifier(
                max_epochs=10,
                module__backbone_kwargs={"width": 16},
                random_state=0,
                verbose=1,
            ),
        ),
    ]
)
pipe.fit(pairs[train], y[train])

# %%
# ``pairs/img`` in the table above is the number of labelled pairs trained
# per image forward pass: training works on batches of unique images with
# every labelled pair among them, instead of running the network twice per
# pair. The threshold and the EER on the held-out training pairs:
clf = pipe.named_steps["clf"]
print(f"threshold_ = {clf.threshold_:.3f}, validation_eer_ = {clf.validation_eer_:.3f}")

# %%
# Equal error rate on unseen writers
# ----------------------------------
# :meth:`~skseg.SiameseVerifier.decision_function` is ``threshold_ - distance``:
# higher means more likely genuine, and 0 is the decision threshold.
# :func:`~skseg.metrics.equal_error_rate` finds the threshold where the false
# acceptance rate (forgeries accepted) equals the false rejection rate
# (genuine signatures rejected).
from skseg.metrics import equal_error_rate, far_frr

score = pipe.decision_function(pairs[test])
eer, eer_threshold = equal_error_rate(y[test], score)
far, frr = far_frr(y[test], score, threshold=0.0)
print(f"test EER = {eer:.3f} (at decision {eer_threshold:.3f})")
print(f"at the fitted threshold: FAR = {far:.3f}, FRR = {frr:.3f}")
print(f"accuracy = {pipe.score(pairs[test], y[test]):.3f}")

# %%
# The EER needs no threshold; FAR and FRR at the fitted threshold do. That
# threshold was chosen on a few writers held out of the training data, and on
# new writers its two error rates need not be equal. To set it for the
# writers a model will serve, see
# :ref:`sphx_glr_auto_examples_plot_threshold_calibration.py`.

# %%
# ROC and DET curves
# ------------------
# The pipeline is a scikit-learn classifier, so scikit-learn's displays work
# as they are; "genuine pair" (label 1) is the positive class. A DET curve
# plots the two error rates against each other on normal-deviate scales, the
# usual plot in biometrics.
from sklearn.metrics import DetCurveDisplay, RocCurveDisplay

fig, (ax_roc, ax_det) = plt.subplots(1, 2, figsize=(10, 4))
RocCurveDisplay.from_estimator(pipe, pairs[test], y[test], ax=ax_roc, name="SiameseVerifier")
DetCurveDisplay.from_estimator(pipe, pairs[test], y[test], ax=ax_det, name="SiameseVerifier")
ax_roc.set_title("ROC, unseen writers")
ax_det.set_title("DET, unseen writers")
fig.tight_layout()
plt.show()
