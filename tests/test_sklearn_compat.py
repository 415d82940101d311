"""The scikit-learn contract: parametrize_with_checks on every public estimator."""

from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmm import FusionClassifier, FusionRegressor, ImageEncoder, OutOfFoldTransformer, TextEncoder

ESTIMATORS = [
    ImageEncoder("cnn", image_size=8, backbone_kwargs={"channels": (4, 8)}, device="cpu"),
    ImageEncoder("pixels", image_size=4, device="cpu"),
    TextEncoder("tfidf", device="cpu"),
    TextEncoder("gru", dim=8, max_length=8, device="cpu"),
    FusionClassifier(max_epochs=30, lr=1e-2, dim=16, hidden_dim=16, device="cpu"),
    FusionRegressor(max_epochs=30, lr=1e-2, dim=16, hidden_dim=16, device="cpu"),
    OutOfFoldTransformer(LogisticRegression(), cv=3),
]

# Each expected failure carries its reason (at most 5 per estimator).
_OUT_OF_FOLD = (
    "fit_transform returns out-of-fold predictions (each row predicted by a model that never saw it), "
    "transform those of the model refitted on all rows: on the training rows they differ by design"
)
EXPECTED_FAILURES = {
    "OutOfFoldTransformer": {
        "check_transformer_general": _OUT_OF_FOLD,
        "check_transformer_data_not_an_array": _OUT_OF_FOLD,
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_contract(estimator, check):
    check(estimator)
