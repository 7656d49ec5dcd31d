"""
==========================================================
Choosing the contrastive margin with writer-grouped search
==========================================================

:class:`~sklearn.model_selection.GridSearchCV` tunes a
:class:`~skseg.SiameseVerifier` inside a pipeline like any scikit-learn
classifier. Two things make the search honest for signature verification:

- the folds split *writers* (:class:`~sklearn.model_selection.GroupKFold`
  with ``groups=``), so every score is measured on writers the model did not
  see, as in deployment;
- the score is the equal error rate (:data:`skseg.metrics.eer_scorer`, the
  negated EER, since scikit-learn maximises scores), which does not depend on
  the fitted threshold. ROC AUC is recorded alongside.
"""

# %%
# Data and pipeline
# -----------------
# Small synthetic data and a few epochs, so that the 3 x 3 fits below run in
# about a minute on a CPU.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from skseg import SiameseVerifier, SignaturePreprocessor
from skseg.datasets import make_pairs, make_synthetic_signatures
from skseg.metrics import eer_scorer

data = make_synthetic_signatures(
    n_writers=18, n_genuine=8, n_forgeries=8, forgery_strength=2.5, random_state=0
)
pairs, y, groups = make_pairs(data, random_state=0)

pipe = Pipeline(
    [
        ("prep", SignaturePreprocessor(canvas_size=(64, 96))),
        (
            "clf",
            SiameseVerifier(max_epochs=4, module__backbone_kwargs={"width": 16}, random_state=0),
        ),
    ]
)

# %%
# The search
# ----------
# The margin of the contrastive loss is the distance beyond which a forged
# pair no longer costs anything. Embeddings are L2-normalised
# (``normalize=True``), so euclidean distances lie in [0, 2] and margins in
# that range are meaningful. ``refit="eer"`` retrains the best setting on all
# pairs; ``groups`` goes to :meth:`~sklearn.model_selection.GridSearchCV.fit`
# and from there to the splitter.
search = GridSearchCV(
    pipe,
    {"clf__margin": [0.5, 1.0, 1.5]},
    cv=GroupKFold(n_splits=3),
    scoring={"eer": eer_scorer, "roc_auc": "roc_auc"},
    refit="eer",
)
search.fit(pairs, y, groups=groups)

results = search.cv_results_
for k, margin in enumerate(results["param_clf__margin"]):
    print(
        f"margin {margin}: EER {-results['mean_test_eer'][k]:.3f} "
        f"+/- {results['std_test_eer'][k]:.3f}, "
        f"ROC AUC {results['mean_test_roc_auc'][k]:.3f} "
        f"+/- {results['std_test_roc_auc'][k]:.3f}"
    )
print("best:", search.best_params_)

# %%
# Mean and spread over the writer folds. With three folds of six writers
# and a few epochs the spread is wide: a difference smaller than it is not
# evidence for one margin over another.
margins = np.asarray(results["param_clf__margin"], dtype=float)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(
    margins,
    -results["mean_test_eer"],
    yerr=results["std_test_eer"],
    marker="o",
    capsize=4,
)
ax.set_xlabel("contrastive margin (clf__margin)")
ax.set_ylabel("EER on held-out writers")
ax.set_title("GroupKFold(3) by writer")
fig.tight_layout()
plt.show()

# %%
# The refitted pipeline is ready to use, with its threshold chosen on pairs
# it held out during the refit:
best = search.best_estimator_
print(f"threshold_ = {best.named_steps['clf'].threshold_:.3f}")
