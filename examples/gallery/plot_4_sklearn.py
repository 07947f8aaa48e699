"""
The scikit-learn estimator in a Pipeline and a grid search
==========================================================

``MLPNumbaClassifier`` follows scikit-learn's conventions, so it goes into a ``Pipeline``
with a scaler and into ``GridSearchCV`` like any classifier.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlp_numba import MLPNumbaClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
pipeline = make_pipeline(StandardScaler(), MLPNumbaClassifier(epochs=30, random_state=0))
search = GridSearchCV(
    pipeline,
    {
        "mlpnumbaclassifier__hidden_size": [32, 128],
        "mlpnumbaclassifier__learning_rate": [1e-3, 3e-3],
    },
    cv=3,
)
search.fit(X_train, y_train)
print("best:", search.best_params_)
print(f"test accuracy: {search.score(X_test, y_test):.4f}")

best = search.best_estimator_[-1]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(best.loss_curve_)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
fig.tight_layout()
