"""
=========================================
Contrastive, triplet and BCE losses
=========================================

:class:`~skseg.SiameseVerifier` offers three training objectives, chosen with
``loss=``:

- ``"contrastive"`` (SigNet's): genuine pairs are pulled together, forged
  pairs pushed at least ``margin`` apart;
- ``"triplet"``: for an anchor image with a genuine partner and a forged
  partner (two labelled pairs sharing the anchor), the forged partner must be
  ``margin`` farther than the genuine one. Triplets are mined from the
  labelled pairs of each batch, so the input is the same pairs as for the
  other losses;
- ``"bce"``: a learned head (BatchNorm and a linear layer) on ``|e1 - e2|``
  trained with binary cross-entropy; the pair score is the head's logit
  instead of a distance.

The three are trained with the same data, backbone, epochs and seed, and
compared by their ROC curves on writers that none of them saw.
"""

# %%
# Data split by writer
# --------------------
import matplotlib.pyplot as plt
from sklearn.metrics import RocCurveDisplay
from sklearn.model_selection import GroupShuffleSplit

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures
from skseg.metrics import equal_error_rate

data = make_synthetic_signatures(
    n_writers=24, n_genuine=8, n_forgeries=8, forgery_strength=2.5, random_state=0
)
pairs, y, groups = make_pairs(data, random_state=0)
X = SignaturePreprocessor(canvas_size=(64, 96)).transform(pairs)
train, test = next(
    GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0).split(X, y, groups)
)

# %%
# Three verifiers
# ---------------
# The triplet loss always L2-normalises the embeddings, so its ``margin`` is
# in the same units as the contrastive one. The printed EERs come from one
# split of a few writers: differences of a few points are within the noise.
fig, ax = plt.subplots(figsize=(5, 5))
for loss in ["contrastive", "triplet", "bce"]:
    clf = SiameseVerifier(
        loss=loss, max_epochs=10, module__backbone_kwargs={"width": 16}, random_state=0
    )
    clf.fit(X[train], y[train])
    score = clf.decision_function(X[test])
    eer, _ = equal_error_rate(y[test], score)
    print(f"{loss:>11}: test EER {eer:.3f}, "
          f"training time {sum(clf.net_.history[:, 'dur']):.1f} s")
    RocCurveDisplay.from_predictions(y[test], score, ax=ax, name=f"{loss}, EER {eer:.2f}")

ax.plot([0, 1], [0, 1], ls=":", color="0.6")
ax.set_title("Held-out writers")
fig.tight_layout()
plt.show()
