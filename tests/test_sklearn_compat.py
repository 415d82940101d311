"""The scikit-learn contract: parametrize_with_checks on every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skmm import FusionClassifier, ImageEncoder, TextEncoder

ESTIMATORS = [
    ImageEncoder("cnn", image_size=8, backbone_kwargs={"channels": (4, 8)}, device="cpu"),
    ImageEncoder("pixels", image_size=4, device="cpu"),
    TextEncoder("tfidf", device="cpu"),
    TextEncoder("gru", dim=8, max_length=8, device="cpu"),
    FusionClassifier(max_epochs=30, lr=1e-2, dim=16, hidden_dim=16, device="cpu"),
]

# Each expected failure carries its reason (at most 5 per estimator).
EXPECTED_FAILURES = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_contract(estimator, check):
    check(estimator)
