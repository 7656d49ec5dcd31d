"""Gradient-boosted trees on stroke-descriptor differences, as plain arrays.

The verifier learns which differences between two signatures' stroke
descriptors (:mod:`skseg.strokes`) mark a forgery with scikit-learn's
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, one classifier for
every writer. :class:`BoostedTrees` keeps only what prediction needs, the
nodes of its trees as flat arrays, so that :func:`skseg.save` can store them
as tensors (a pickle could run code on load) and a loaded model scores
exactly as the fitted one.
"""

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

# Node fields a numerical split needs; the arrays BoostedTrees stores, in order.
_FIELDS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")
_DTYPES = {"feature": np.int64, "threshold": np.float64, "missing_left": np.bool_,
           "left": np.int64, "right": np.int64, "is_leaf": np.bool_, "value": np.float64}
# Rows scored at once: bounds the (rows, trees) node table's memory.
_CHUNK = 4096


#: The classifier's settings: 300 trees at learning rate 0.05 (scikit-learn's
#: early stopping on 10 % of the pairs ends sooner when there are more than
#: 10,000); the rest are scikit-learn's defaults.
TREE_SETTINGS = {"max_iter": 300, "learning_rate": 0.05}


def fit_boosted_trees(features, target, random_state=None, **settings):
    """Fit the classifier (target 1: genuine pair) and return it as :class:`BoostedTrees`.

    :data:`TREE_SETTINGS`, which ``settings`` (any
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` parameters) override
    or extend; NaN features (a blank image) are missing values.
    """
    model = HistGradientBoostingClassifier(**{**TREE_SETTINGS, **settings},
                                           random_state=random_state)
    return BoostedTrees.from_classifier(model.fit(features, target))


class BoostedTrees:
    """The trees of a fitted binary ``HistGradientBoostingClassifier``, as arrays.

    ``decision_function(X)`` is the classifier's log-odds of the class
    ``classes_[1]``: the baseline plus, for each tree, the value of the leaf
    ``X`` reaches (a node sends NaN left where ``missing_left``, else right;
    other values left where ``x <= threshold``).

    Parameters
    ----------
    arrays : dict of ndarray
        The node fields ``feature, threshold, missing_left, left, right,
        is_leaf, value``, all trees' nodes end to end (child indices count from
        each tree's own first node), as :meth:`as_arrays` returns them, plus
        ``roots`` (the first node of each tree), ``baseline`` (shape (1,)) and
        ``n_features`` (shape (1,)).
    """

    def __init__(self, arrays):
        missing = [k for k in (*_FIELDS, "roots", "baseline", "n_features") if k not in arrays]
        if missing:
            raise ValueError(f"BoostedTrees: arrays lack {missing}.")
        self.nodes = {k: np.asarray(arrays[k], dtype=_DTYPES[k]) for k in _FIELDS}
        self.roots = np.asarray(arrays["roots"], dtype=np.int64)
        self.baseline = float(np.asarray(arrays["baseline"]).reshape(-1)[0])
        self.n_features = int(np.asarray(arrays["n_features"]).reshape(-1)[0])
        n_nodes = len(self.nodes["feature"])
        if any(len(v) != n_nodes for v in self.nodes.values()):
            raise ValueError("BoostedTrees: the node arrays differ in length.")

    @classmethod
    def from_classifier(cls, model):
        """Read the trees of a fitted binary ``HistGradientBoostingClassifier``
        (numerical features only)."""
        trees = [predictors[0].nodes for predictors in model._predictors]
        if any(len(predictors) != 1 for predictors in model._predictors):
            raise ValueError("BoostedTrees holds a binary classifier's trees only.")
        if any(tree["is_categorical"].any() for tree in trees):
            raise ValueError("BoostedTrees holds numerical splits only.")
        sizes = [len(tree) for tree in trees]
        arrays = {
            "feature": np.concatenate([t["feature_idx"] for t in trees]),
            "threshold": np.concatenate([t["num_threshold"] for t in trees]),
            "missing_left": np.concatenate([t["missing_go_to_left"] for t in trees]),
            "left": np.concatenate([t["left"] for t in trees]),
            "right": np.concatenate([t["right"] for t in trees]),
            "is_leaf": np.concatenate([t["is_leaf"] for t in trees]),
            "value": np.concatenate([t["value"] for t in trees]),
            "roots": np.concatenate([[0], np.cumsum(sizes)[:-1]]),
            "baseline": np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1),
            "n_features": np.array([model.n_features_in_]),
        }
        return cls(arrays)

    def as_arrays(self):
        """Every array that :class:`BoostedTrees` is built from (for saving)."""
        return {**self.nodes, "roots": self.roots, "baseline": np.array([self.baseline]),
                "n_features": np.array([self.n_features])}

    @property
    def n_trees(self):
        return len(self.roots)

    def decision_function(self, X):
        """Log-odds of a genuine pair for each row of ``X`` (n_rows, n_features)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"BoostedTrees takes rows of {self.n_features} features; "
                             f"got shape {X.shape}.")
        out = np.empty(len(X))
        for start in range(0, len(X), _CHUNK):
            out[start:start + _CHUNK] = self._score(X[start:start + _CHUNK])
        return out

    def _score(self, X):
        # Walk every tree at once: node[i, t] is where row i stands in tree t.
        n = self.nodes
        node = np.broadcast_to(self.roots, (len(X), self.n_trees)).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            active = ~n["is_leaf"][node]
            if not active.any():
                break
            at = node[active]
            value = X[np.broadcast_to(rows, node.shape)[active], n["feature"][at]]
            go_left = np.where(np.isnan(value), n["missing_left"][at], value <= n["threshold"][at])
            root = np.broadcast_to(self.roots, node.shape)[active]
            node[active] = root + np.where(go_left, n["left"][at], n["right"][at])
        leaves = n["value"][node]
        total = np.full(len(X), self.baseline)
        for t in range(self.n_trees):  # tree by tree, as scikit-learn sums them
            total += leaves[:, t]
        return total
