"""Small builders shared by the test modules."""

from skmm import FusionClassifier, ImageEncoder


def fast_classifier(**params):
    """A small, quick FusionClassifier on frozen features (resized pixels + tf-idf)."""
    defaults = dict(
        image=ImageEncoder("pixels", image_size=12), text="tfidf", max_epochs=25, lr=3e-3,
        dim=32, hidden_dim=32, random_state=0, device="cpu",
    )
    defaults.update(params)
    return FusionClassifier(**defaults)
