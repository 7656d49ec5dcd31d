"""
========================================
Decision thresholds: EER vs a FAR target
========================================

A verifier's scores say how alike two signatures are; the threshold decides
what is accepted. Where to put it is a business decision:

- a **forensic lab** reports the equal error rate (EER), where the false
  acceptance rate (FAR, forgeries accepted) equals the false rejection rate
  (FRR, genuine signatures rejected);
- a **bank** caps FAR, because every accepted forgery costs money, and
  accepts the FRR that follows (genuine cheques sent to manual review).

This example trains one network and compares the thresholds chosen by
``threshold_strategy="eer"`` and ``threshold_strategy="far"``, re-calibrates
the threshold on data of other writers with
:meth:`~skseg.SiameseVerifier.calibrate_threshold`, and shows scikit-learn's
:class:`~sklearn.model_selection.TunedThresholdClassifierCV` on the same
verifier.
"""

# %%
# Three groups of writers
# -----------------------
# Training writers, calibration writers (the bank's own customers, say, whose
# labelled pairs are used only to set the threshold), and test writers, kept
# apart with the writer ids in ``groups``. The canvases are computed once and
# the verifier is used without a pipeline.
import matplotlib.pyplot as plt
import numpy as np

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures
from skseg.metrics import equal_error_rate, far_frr

data = make_synthetic_signatures(
    n_writers=24, n_genuine=8, n_forgeries=8, forgery_strength=2.5, random_state=0
)
pairs, y, groups = make_pairs(data, random_state=0)
X = SignaturePreprocessor(canvas_size=(64, 96)).transform(pairs)

writer = groups.astype(int)
train, calib, test = writer < 12, (writer >= 12) & (writer < 18), writer >= 18
print(f"pairs: {train.sum()} train, {calib.sum()} calibration, {test.sum()} test")

# %%
# EER threshold, chosen after training
# ------------------------------------
# By default (``threshold_strategy="eer"``) the verifier holds out 20% of the
# training pairs, grouped so that whole writers are held out, and puts the
# threshold at their EER. ``decision_function`` is ``threshold_ - distance``,
# so a pair is accepted when its decision is >= 0.
params = dict(max_epochs=10, module__backbone_kwargs={"width": 16}, random_state=0)
eer_model = SiameseVerifier(**params).fit(X[train], y[train])

score = eer_model.decision_function(X[test])
eer, _ = equal_error_rate(y[test], score)
far, frr = far_frr(y[test], score, threshold=0.0)
print(f"test EER {eer:.3f}")
print(f"threshold_strategy='eer': threshold_ {eer_model.threshold_:.3f}, "
      f"test FAR {far:.3f}, FRR {frr:.3f}")

# %%
# A FAR target
# ------------
# ``threshold_strategy="far"`` picks the threshold with the lowest FRR among
# those whose FAR on the held-out pairs is at most ``threshold_target``. The
# threshold is the only thing that changes: with the same ``random_state``
# the network is trained identically, so the scores (distances) are the same
# and only the cut moves.
far_model = SiameseVerifier(threshold_strategy="far", threshold_target=0.05, **params)
far_model.fit(X[train], y[train])

distance_eer = eer_model.threshold_ - eer_model.decision_function(X[test])
distance_far = far_model.threshold_ - far_model.decision_function(X[test])
print("same distances:", np.allclose(distance_eer, distance_far))
far, frr = far_frr(y[test], far_model.decision_function(X[test]), threshold=0.0)
print(f"threshold_strategy='far': threshold_ {far_model.threshold_:.3f}, "
      f"test FAR {far:.3f}, FRR {frr:.3f}")

# %%
# The FAR measured on the test writers may exceed the 5% target: the
# threshold was set on a handful of held-out writers, and a rate estimated on
# a few dozen forged pairs is coarse. More calibration data gives a more
# reliable cut.
#
# Calibrating on other writers, without retraining
# ------------------------------------------------
# :meth:`~skseg.SiameseVerifier.calibrate_threshold` chooses the threshold
# again from labelled pairs of other writers (here the calibration writers),
# with any strategy; the network is not touched. It also refits the map from
# decisions to ``predict_proba``.
rows = []
for strategy, target in [("eer", None), ("far", 0.05), ("far", 0.01), ("frr", 0.05)]:
    eer_model.calibrate_threshold(X[calib], y[calib], strategy=strategy, target=target)
    far, frr = far_frr(y[test], eer_model.decision_function(X[test]), threshold=0.0)
    label = strategy if target is None else f"{strategy} <= {target}"
    rows.append((label, eer_model.threshold_, far, frr))
    print(f"{label:>10}: threshold_ {eer_model.threshold_:.3f}, "
          f"test FAR {far:.3f}, FRR {frr:.3f}")

# %%
# Each threshold is one point on the test writers' DET trade-off: the
# network's scores stay the same, only the operating point moves.
from sklearn.metrics import det_curve

fpr, fnr, _ = det_curve(y[test], -distance_eer)
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot(fpr, fnr, color="0.5", label="all thresholds (test writers)")
for label, _, far, frr in rows:
    ax.plot(far, frr, "o", label=f"calibrated: {label}")
ax.set_xlabel("FAR (forgeries accepted)")
ax.set_ylabel("FRR (genuine rejected)")
ax.set_xlim(0, 1)
ax.set_ylim(0, 1)
ax.legend()
ax.set_title("Operating points on the test writers")
fig.tight_layout()
plt.show()

# %%
# scikit-learn's TunedThresholdClassifierCV
# -----------------------------------------
# :class:`~sklearn.model_selection.TunedThresholdClassifierCV` tunes the cut on
# the verifier's ``predict_proba`` to maximise any scorer. With
# ``cv="prefit"`` and ``refit=False`` it uses the trained verifier as it is and
# tunes on the data given to ``fit``: here the calibration writers, never the
# training or test writers. Balanced accuracy weighs FAR and FRR equally.
from sklearn.model_selection import TunedThresholdClassifierCV

tuned = TunedThresholdClassifierCV(
    eer_model, scoring="balanced_accuracy", cv="prefit", refit=False
)
tuned.fit(X[calib], y[calib])
predicted = tuned.predict(X[test])
far = np.mean(predicted[y[test] == 0] == 1)  # forged pairs accepted
frr = np.mean(predicted[y[test] == 1] == 0)  # genuine pairs rejected
print(f"tuned cut on P(genuine): {tuned.best_threshold_:.3f}; "
      f"test FAR {far:.3f}, FRR {frr:.3f}")
