"""GridSearchCV over a SiameseVerifier, run on a local Dask cluster through joblib."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold

from skseg import SiameseVerifier

distributed = pytest.importorskip("distributed")


def test_grid_search_on_a_local_dask_cluster(signature_pairs):
    import joblib

    X, y, groups = (signature_pairs["X_train"], signature_pairs["y_train"],
                    signature_pairs["groups_train"])
    search = GridSearchCV(
        SiameseVerifier(max_epochs=1, random_state=0),
        {"margin": [0.5, 1.0]}, cv=GroupKFold(2), scoring="roc_auc", n_jobs=-1,
    )
    # Two worker processes, as on a cluster: the estimators and data travel by pickle.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            search.fit(X, y, groups=groups)
        assert len(client.scheduler_info()["workers"]) == 2
    assert search.cv_results_["mean_test_score"].shape == (2,)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(signature_pairs["X_test"][:4]).shape == (4,)
